"""The machinery that made the course's checkpoints, apart from the papers' methods: the
training loop (:mod:`.loop`: seeded, resumable, validation split, the test set measured once),
augmentation (:mod:`.augment`), distillation (:mod:`.distill`) and weight averaging
(:mod:`.swa`). Notebooks reach it through :mod:`xai_helpers.train` (``load_or_train``,
``predict``, ``evaluate``); a maintainer runs ``python -m xai_helpers.train NAME``.
"""
