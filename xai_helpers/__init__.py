"""Helpers for the explainable-AI course notebooks (00-07), in layers (the README's table):

* foundations: ``config`` (mode, device, paths, seeds), ``checks`` (input checks, the models'
  first layer), ``hooks`` (reading layers safely), ``data`` and ``digits`` (datasets),
  ``plots`` (plotting primitives);
* models: ``registry``, ``architectures``, ``gcm`` and ``gcm_models``, ``checkpoints`` (the
  trained weights), gathered by ``models``;
* machinery: ``scoring`` (accuracy, the test-set figures), ``training/`` (the loop,
  augmentation, distillation, weight averaging; ``train`` is its entry), ``verify``;
* the papers' methods: ``contribution``, ``occlusion`` and ``filter_search`` (paper 1),
  ``gcm_analysis`` (paper 2), ``cav``, ``cav_rules``, ``cav_analysis`` and ``two_animals``
  (paper 3), ``pruning`` (paper 4); the comparison of notebook 06: ``class_maps``, ``methods``
  (one calling convention), ``decline`` (paper 2's decline rate), ``faithfulness`` (deletion /
  insertion, the randomisation check, faithfulness correlation), ``ranking`` (intervals, ranks);
* figures and widgets: ``figures`` (the papers' multi-panel figures), gathered with ``plots``
  by ``viz``; ``widgets``.

Shared meanings, used by every method module:

``model``
    A ``torch.nn.Module`` that takes images as the loaders return them (float in [0, 1],
    N x C x H x W) and returns class scores (logits), N x K. Any normalisation is a layer
    inside the model.
``inputs``
    Float tensor N x C x H x W in [0, 1].
``target``
    The class to explain: an ``int`` for all images, or an integer tensor of shape (N,).
``layer``
    A module name as in ``model.named_modules()`` (e.g. ``"features.30"``).
"""

__version__ = "0.1.0"
