"""The series' models in one place: the registry of architectures, the architectures, and the
store of trained checkpoints.

Every model takes the loaders' images as they are (float in [0, 1], N x C x H x W); any
normalisation is its first layer (:class:`Normalize`), so ``load_pretrained(name)(x)`` just
works and every explanation is in pixel space.

A checkpoint ``NAME`` is two committed files in ``data/checkpoints/``: ``NAME.pt`` (the
``state_dict``, loaded with ``weights_only=True``) and ``NAME.json`` (how it was trained and
the test accuracy measured on the full test set; ``python -m xai_helpers.verify`` re-measures
it). ``python -m xai_helpers.train NAME`` writes both.

This module only gathers: :mod:`~xai_helpers.registry` (``Recipe``, ``register``, ``build``),
:mod:`~xai_helpers.architectures` and :mod:`~xai_helpers.gcm_models` (the models),
:mod:`~xai_helpers.checkpoints` (``load_pretrained`` and the store).
"""

from __future__ import annotations

from .architectures import *  # noqa: F403
from .architectures import __all__ as _architectures
from .checkpoints import (
    CheckpointError,
    checkpoint_paths,
    load_pretrained,
    model_versions,
    pretrained_table,
    read_meta,
    save_checkpoint,
)
from .checks import Normalize, check_images
from .gcm import GCM
from .registry import (
    REGISTRY,
    ModelSpec,
    Recipe,
    build,
    chain,
    count_parameters,
    recipe_dict,
    register,
    spec,
)

__all__ = ["GCM", "Normalize", "check_images", "Recipe", "ModelSpec", "REGISTRY", "register",
           "spec", "build", "chain", "count_parameters", "recipe_dict", "load_pretrained",
           "save_checkpoint", "read_meta", "pretrained_table", "CheckpointError",
           "checkpoint_paths", "model_versions", *_architectures]
