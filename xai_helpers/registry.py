"""The registry of the series' models: each architecture's builder, dataset and training
recipe under one name (``build(name)`` gives a freshly initialised model). The architectures
register themselves in :mod:`xai_helpers.architectures` and :mod:`xai_helpers.gcm_models`;
:mod:`xai_helpers.models` gathers all of it (with the checkpoint store) for the notebooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from torch import nn

__all__ = ["Recipe", "ModelSpec", "REGISTRY", "register", "spec", "chain", "build",
           "count_parameters", "recipe_dict"]


@dataclass(frozen=True)
class Recipe:
    """How a registered model is trained (written into its checkpoint JSON)."""

    epochs: int
    batch_size: int = 100
    optimizer: str = "adam"  # "adam", "adamw" or "sgd" (momentum 0.9, Nesterov)
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "none"  # "none" or "cosine" (per step, to 0 at the end)
    augment: str = "none"  # "none", "shift", "crop_flip" or "crop_flip_cutout" (training.augment)
    label_smoothing: float = 0.0
    seed: int = 0
    max_steps: int | None = None  # stop after this many iterations (paper 1: 100,000)
    jpeg_p: float = 0.0  # chance that a training image is replaced by its JPEG-75 copy
    teachers: tuple[str, ...] = ()  # checkpoints whose mean prediction is distilled (distill)
    distill_weight: float = 0.0  # a in (1 - a) CE + a T^2 KL
    temperature: float = 4.0
    init: str = ""  # start from this checkpoint's weights instead of random ones (fine-tuning)
    swa: bool = False  # average the weights of every epoch's end (training.swa), BN re-estimated
    clean_teacher: bool = False  # a JPEG copy is distilled towards the teacher's exact-image view
    average: tuple[str, ...] = ()  # cyclic SWA: these checkpoints' weights enter the average first


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it, on which dataset, how to train it."""

    name: str
    build: Callable[[], nn.Module]
    dataset: str
    recipe: Recipe
    description: str
    paper: str = ""
    paper_accuracy: float | None = None  # the paper's test accuracy (fraction), for reference
    made_by: str = ""  # the command that makes it, when plain training does not (pruning)


REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, *, dataset: str, recipe: Recipe, description: str, paper: str = "",
             paper_accuracy: float | None = None, made_by: str = ""):
    """Decorator: register a builder ``() -> nn.Module`` under ``name``."""

    def decorate(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        if name in REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        REGISTRY[name] = ModelSpec(name, builder, dataset, recipe, description, paper,
                                   paper_accuracy, made_by)
        return builder

    return decorate


def spec(name: str) -> ModelSpec:
    """The registry entry of ``name``, with a clear error for unknown names."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def chain(name: str) -> list[str]:
    """``name`` and the models whose weights its recipe starts from, oldest first: e.g.
    ``["gcm_cifar10_clip", "gcm_cifar10_v14", "gcm_cifar10"]``."""
    names = [name]
    while spec(names[0]).recipe.init:
        parent = spec(names[0]).recipe.init
        if parent in names:
            raise ValueError(f"the recipes of {', '.join(names)} start from each other in a loop")
        names.insert(0, parent)
    return names


def build(name: str) -> nn.Module:
    """A freshly initialised (untrained) model ``name``."""
    return spec(name).build()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def recipe_dict(recipe: Recipe) -> dict:
    """The recipe as JSON writes and reads it (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(recipe).items()}
