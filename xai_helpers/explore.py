"""Your own model and images (notebook 08): loaders that turn what a reader brings into what
every method of the series takes, a model whose input is float images in [0, 1], N x 3 x S x S.

* :func:`load_model`: a torchvision classifier by name (its ImageNet weights where they can be
  had, else random weights, and it says which), or your own weights file (a ``state_dict``,
  loaded with ``weights_only=True``) for an architecture you build; the ImageNet normalisation
  becomes the model's first layer (:class:`~xai_helpers.checks.Normalize`).
* :func:`load_images`: image files, bytes or a folder, their central square resized to the
  model's size, grey images made RGB; what is not an image, or is too large, is refused.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

from . import config, faithfulness, methods
from .checks import Normalize

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "LoadedModel", "load_model", "load_images",
           "Explanation", "explain",
           "MAX_PIXELS"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_PIXELS = 40_000_000  # a larger image is refused (decompression bombs, memory)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for the series' methods, and what it is."""

    model: nn.Module  # takes float images in [0, 1], N x 3 x size x size
    name: str
    weights: str  # where the weights came from, said plainly
    size: int  # the input side the model expects
    classes: tuple[str, ...]


def _wrap(net: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> nn.Module:
    return nn.Sequential(Normalize(tuple(mean), tuple(std)), net).eval()


def load_model(source: str | Path, *, builder: Callable[[], nn.Module] | None = None,
               classes: Sequence[str] | None = None, size: int = 224,
               mean=IMAGENET_MEAN, std=IMAGENET_STD) -> LoadedModel:
    """A classifier for the series' methods.

    ``source`` is a torchvision model name (``"resnet18"``, ``"vgg11"``,
    ``"mobilenet_v3_small"``, ...) or the path of a weights file. With a name, torchvision's
    default ImageNet weights are used where they can be had (a download, unless
    ``XAI_DOWNLOAD=0``; or torch's cache), else the architecture with random weights, and
    ``weights`` says which. With a file, ``builder()`` builds the architecture (or the file's
    name is a torchvision name) and the file must hold a ``state_dict``: it is loaded with
    ``weights_only=True``, so a pickled model, which could run code, is refused.
    ``mean``/``std``: the normalisation the model was trained with, made its first layer.
    """
    path = Path(source)
    if path.suffix in (".pt", ".pth", ".bin") or path.exists():
        return _from_file(path, builder, classes, size, mean, std)
    name = str(source)
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"{name!r} is neither a file nor a torchvision classifier; try one of "
                         f"resnet18, vgg11, mobilenet_v3_small (torchvision.models.list_models())")
    weights_enum = torchvision.models.get_model_weights(name).DEFAULT
    categories = tuple(weights_enum.meta["categories"])
    try:
        if not config.download_allowed():
            cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights_enum.url).name
            if not cached.exists():
                raise RuntimeError("downloads are off (XAI_DOWNLOAD=0) and no cached copy")
        net = torchvision.models.get_model(name, weights=weights_enum)
        said = f"ImageNet weights {weights_enum}"
    except Exception as err:  # offline, server down, no cache: random weights, said
        net = torchvision.models.get_model(name, weights=None)
        said = (f"RANDOM weights: the ImageNet weights could not be had "
                f"({type(err).__name__}: {' '.join(str(err).split())[:120]})")
    return LoadedModel(_wrap(net, mean, std), name, said, size, categories)


def _from_file(path, builder, classes, size, mean, std) -> LoadedModel:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if builder is None:
        name = path.stem.split("-")[0]
        if name not in torchvision.models.list_models(module=torchvision.models):
            raise ValueError(f"{path.name}: give builder=... (a function that builds the "
                             f"architecture the weights belong to), or name the file after a "
                             f"torchvision model")
        builder = lambda: torchvision.models.get_model(name, weights=None)  # noqa: E731
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} cannot be loaded safely as weights ({type(err).__name__}); "
                         f"save the model's state_dict (torch.save(model.state_dict(), path)), "
                         f"not the model object: a pickled model can run code") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state_dict")
    net = builder()
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit the architecture builder() makes: "
                         f"{' '.join(str(err).split())[:300]}") from None
    with torch.no_grad():
        k = net.eval()(torch.rand(1, 3, size, size)).shape[1]
    names = tuple(classes) if classes is not None else tuple(f"class {i}" for i in range(k))
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a model with {k} outputs")
    return LoadedModel(_wrap(net, mean, std), path.stem, f"your weights ({path.name})", size,
                       names)


def _one_image(source, size: int, what: str) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    try:
        with Image.open(source) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"{what} has {img.width} x {img.height} pixels, more than "
                                 f"{MAX_PIXELS:,}: make it smaller first")
            img = img.convert("RGB")  # grey, palette or RGBA -> RGB
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize(
                (size, size), Image.Resampling.BICUBIC)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{what} is not an image Pillow can read ({type(err).__name__}); "
                         f"give a PNG or JPEG file") from None
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float() / 255


def load_images(sources, size: int = 224) -> torch.Tensor:
    """N x 3 x size x size images in [0, 1] from image files, bytes, or a folder of them (its
    PNG / JPEG files in name order): each one's central square, resized (bicubic)."""
    if isinstance(sources, str | Path) and Path(sources).is_dir():
        folder = Path(sources)
        sources = sorted(p for p in folder.iterdir()
                         if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif"))
        if not sources:
            raise ValueError(f"{folder} holds no PNG or JPEG files")
    elif isinstance(sources, str | Path | bytes | bytearray | memoryview):
        sources = [sources]
    images = [_one_image(s, size, str(s) if isinstance(s, str | Path) else f"image {i}")
              for i, s in enumerate(sources)]
    if not images:
        raise ValueError("no images given")
    return torch.stack(images)


@dataclass(frozen=True)
class Explanation:
    """Every applicable map of the series for one class per image, and how faithful each is."""

    target: torch.Tensor  # (N,) the explained class of each image
    top5: torch.Tensor  # N x 5 classes, highest score first
    maps: dict[str, torch.Tensor]  # method -> N x C' x H x W
    skipped: dict[str, str]  # method -> why it does not apply to this model
    measures: dict[str, dict[str, float]]  # method -> {"deletion": ..., "insertion": ...}


def explain(model: nn.Module, images: torch.Tensor, target=None, *,
            which: Sequence[str] | None = None, curves: bool = True,
            steps: int = 8) -> Explanation:
    """One call from "model + images" to every map and its faithfulness: the maps of
    :func:`xai_helpers.methods.attribute` for ``target`` (``None``: each image's top class)
    for every method in ``which`` (default: all registered) that applies to the model (the
    others in ``skipped``, with the reason), and, with ``curves``, each map's deletion and
    insertion areas (:mod:`xai_helpers.faithfulness`) beside the random order's, under the
    key ``"random"``."""
    with torch.no_grad():
        scores = model(images)
    top5 = scores.topk(min(5, scores.shape[1]), dim=1).indices
    target = top5[:, 0] if target is None else torch.as_tensor(target).long().expand(len(images))
    maps, skipped = {}, {}
    for name in (which or list(methods.METHODS)):
        try:
            methods.METHODS[name].needs(model)
        except ValueError as err:
            skipped[name] = str(err)
            continue
        maps[name] = methods.attribute(name, model, images, target)[:, 0]
    measures: dict[str, dict[str, float]] = {}
    if curves:
        noise = torch.rand(len(images), 1, *images.shape[-2:],
                           generator=torch.Generator().manual_seed(0))
        for name, m in {**maps, "random": noise}.items():
            measures[name] = {
                "deletion": faithfulness.deletion_curve(model, images, target, m,
                                                        steps=steps).area,
                "insertion": faithfulness.insertion_curve(model, images, target, m,
                                                          steps=steps).area}
    return Explanation(target, top5, maps, skipped, measures)
