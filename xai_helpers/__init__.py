"""Helpers for the explainable-AI course notebooks (00-06).

One module per idea: ``config`` (mode, device, paths, seeds), ``data`` (datasets),
``models`` (architectures, registry), ``checkpoints`` (the trained weights), ``hooks``
(reading layers safely), ``train`` (the shared training loop), ``scoring`` (accuracy, the
test-set figures of a checkpoint), ``verify`` (re-measure
checkpoints), ``viz`` (figures) and ``widgets`` (sliders).
Each explanation method of the papers gets a module of its own: ``contribution`` and
``occlusion`` (paper 1), ``gcm`` with ``gcm_analysis`` and the SVHN stand-in ``digits``
(paper 2), ``cav`` with its layer rules ``cav_rules`` (paper 3), ``pruning`` (paper 4); the
comparison of notebook 06 has ``methods`` (one calling convention for every method, maps in
``class_maps``), ``decline`` (paper 2's decline rate), ``faithfulness`` (deletion /
insertion, the randomisation check, faithfulness correlation) and ``ranking`` (bootstrap
intervals and ranks over all of them).

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
