"""Your own model and images (notebook 08): what a reader brings, turned into what every method
of the series takes (a model whose input is float images in [0, 1], N x 3 x S x S), and one
call from "model + images" to "every applicable map + how faithful each one is".

* :func:`load_model`: a course checkpoint (``"vgg_cifar10"``, ...; trained, offline), a
  torchvision classifier by name (its ImageNet weights where they can be had, else random
  weights, and it says which), or your own weights file (a ``state_dict``, loaded with
  ``weights_only=True``) for an architecture you build; the normalisation becomes the model's
  first layer (:class:`~xai_helpers.checks.Normalize`).
* :func:`load_images`: image files, bytes or a folder, their central square resized to the
  model's size, grey images made RGB (said in ``notes``); what is not an image, or is too
  large, is refused.
* :func:`explain`: the maps of :mod:`xai_helpers.methods` that apply to the model (the others
  with the reason), and per image the measures of notebook 06 (:mod:`xai_helpers.faithfulness`):
  patch deletion, insertion, the cascading randomisation check, beside a random order's.
* :func:`measure_rows` / :func:`write_csv`: the numbers as a table, one row per image and
  method.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision
from torch import nn

from . import checkpoints, config, data, faithfulness, methods, registry
from .cav import recording
from .checks import Normalize, class_indices
from .class_maps import IG_STEPS, default_layer

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "COURSE_MODELS", "TORCHVISION_MODELS",
           "LoadedModel", "load_model", "model_choices", "load_images", "conv_layers",
           "gradcam_layer", "Explanation", "explain", "settings", "MEASURES", "measure_rows",
           "write_csv", "summarise", "format_summary"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
COURSE_MODELS = ("vgg_cifar10", "cnn_cifar10", "gcm_cifar10")  # RGB course models, trained
TORCHVISION_MODELS = ("resnet18", "vgg11", "mobilenet_v3_small")  # offered in the notebook


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for the series' methods, and what it is."""

    model: nn.Module  # takes float images in [0, 1], N x 3 x size x size
    name: str
    weights: str  # where the weights came from, said plainly
    size: int  # the input side the model expects
    classes: tuple[str, ...]

    @property
    def trained(self) -> bool:
        """False for random weights: its maps show the architecture, not anything learned."""
        return not self.weights.startswith("RANDOM")

    @property
    def label(self) -> str:
        """Name and the kind of weights, short (for figure titles)."""
        kind = self.weights.split("(")[0].split(":")[0].strip()
        return f"{self.name}, {kind.lower() if kind.isupper() else kind}"


def _wrap(net: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> nn.Module:
    return nn.Sequential(Normalize(tuple(mean), tuple(std)), net).eval()


def load_model(source: str | Path, *, builder: Callable[[], nn.Module] | None = None,
               classes: Sequence[str] | None = None, size: int = 224,
               mean=IMAGENET_MEAN, std=IMAGENET_STD, pretrained: bool = True) -> LoadedModel:
    """A classifier for the series' methods.

    ``source`` is one of :data:`COURSE_MODELS` (the course's committed CIFAR-10 checkpoints,
    32 x 32 input, normalisation already inside), a torchvision model name (``"resnet18"``,
    ``"vgg11"``, ``"mobilenet_v3_small"``, ...) or the path of a weights file. With a
    torchvision name, its default ImageNet weights are used where they can be had (a download,
    unless ``XAI_DOWNLOAD=0``; or torch's cache), else the architecture with random weights,
    and ``weights`` says which. With a file, ``builder()`` builds the architecture (or the
    file's name is a torchvision name) and the file must hold a ``state_dict``: it is loaded
    with ``weights_only=True``, so a pickled model, which could run code, is refused.
    ``mean``/``std``: the normalisation the model was trained with, made its first layer.
    ``pretrained=False``: a torchvision architecture with random weights even where the
    ImageNet weights could be had (a control: what the maps show when nothing was learned).
    """
    if str(source) in COURSE_MODELS:
        name = str(source)
        info = data.DATASETS[registry.spec(name).dataset]
        meta = checkpoints.read_meta(name)
        return LoadedModel(checkpoints.load_pretrained(name), name,
                           f"course checkpoint data/checkpoints/{name}.pt (CIFAR-10 test "
                           f"accuracy {meta['test_accuracy']:.2%})", info.size, info.classes)
    path = Path(source)
    if path.suffix in (".pt", ".pth", ".bin") or path.exists():
        return _from_file(path, builder, classes, size, mean, std)
    name = str(source)
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"{name!r} is neither a file, a course model ({', '.join(COURSE_MODELS)})"
                         f" nor a torchvision classifier; try resnet18, vgg11 or "
                         f"mobilenet_v3_small (torchvision.models.list_models())")
    weights_enum = torchvision.models.get_model_weights(name).DEFAULT
    categories = tuple(weights_enum.meta["categories"])
    try:
        if not pretrained:
            raise RuntimeError("asked for (pretrained=False)")
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


def model_choices() -> list[str]:
    """What the notebook offers: the course models whose checkpoints are here, then
    :data:`TORCHVISION_MODELS`."""
    here = [n for n in COURSE_MODELS if checkpoints.checkpoint_paths(n)[0].exists()]
    return here + list(TORCHVISION_MODELS)


def load_images(sources, size: int = 224, notes: list[str] | None = None) -> torch.Tensor:
    """N x 3 x size x size images in [0, 1] from image files, bytes, or a folder of them (its
    PNG / JPEG files in name order): each one's central square, resized (bicubic;
    :func:`xai_helpers.data.read_image`). ``notes`` gets a line per conversion (grey to RGB,
    cropping)."""
    if isinstance(sources, str | Path) and Path(sources).is_dir():
        folder = Path(sources)
        sources = sorted(p for p in folder.iterdir()
                         if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif"))
        if not sources:
            raise ValueError(f"{folder} holds no PNG or JPEG files")
    elif isinstance(sources, str | Path | bytes | bytearray | memoryview):
        sources = [sources]
    images = [data.read_image(s, size, str(s) if isinstance(s, str | Path) else f"image {i}",
                              notes) for i, s in enumerate(sources)]
    if not images:
        raise ValueError("no images given")
    return torch.stack(images)


def gradcam_layer(model: nn.Module, size: int) -> str | None:
    """A Grad-CAM layer worth showing: :func:`~xai_helpers.class_maps.default_layer` unless its
    output is smaller than 4 x 4 (``vgg_cifar10``'s deepest maps are 2 x 2 and 1 x 1: a map
    upscaled from them is a smooth blob), then the last convolution whose output is at least
    4 x 4; ``None`` without convolutions."""
    layers = conv_layers(model)
    if not layers:
        return None
    default = default_layer(model)
    with torch.no_grad(), recording(model, layers) as calls:
        model(torch.rand(1, 3, size, size))
    side = {c.name: min(c.output.shape[-2:]) for c in calls if c.output.ndim == 4}
    if side.get(default, 4) >= 4:
        return default
    larger = [n for n in layers if side.get(n, 0) >= 4]
    return larger[-1] if larger else default


def conv_layers(model: nn.Module) -> list[str]:
    """The layers Grad-CAM and CAV can be read at: every ``nn.Conv2d`` (definition order),
    and the default Grad-CAM layer (the block feeding global average pooling) if it is not a
    convolution itself."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        default = default_layer(model)
    except ValueError:
        return names
    return names if default in names else names + [default]


# --------------------------------------------------------------------------- maps and measures

MEASURES = {  # name: (what it is, is higher better)
    "deletion": ("area under the patch-deletion curve (black patches)", False),
    "insertion": ("area under the insertion curve (from a blurred copy)", True),
    "randomisation": ("Spearman correlation with the maps of the randomised model", False),
}


@dataclass(frozen=True)
class Explanation:
    """Every applicable map of the series for one class per image, and how faithful each is."""

    target: torch.Tensor  # (N,) the explained class of each image
    scores: torch.Tensor  # N x K logits
    maps: dict[str, torch.Tensor]  # method -> N x C' x H x W
    skipped: dict[str, str]  # method -> why it does not apply to this model
    measures: dict[str, dict[str, torch.Tensor]]  # method (and "random") -> measure -> (N,)
    settings: dict[str, dict] = field(default_factory=dict)  # method -> knobs used
    seconds: dict[str, float] = field(default_factory=dict)  # method -> time for its map(s)

    @property
    def top5(self) -> torch.Tensor:
        """N x 5 classes, highest score first."""
        return self.scores.topk(min(5, self.scores.shape[1]), dim=1).indices


def settings(method: str, size: int, layer: str | None = None,
             cav_layer: str = "input") -> dict:
    """The knobs :func:`explain` gives ``method`` for ``size`` x ``size`` images: Grad-CAM's
    (and Guided Grad-CAM's) ``layer``, CAV's ``layer``, occlusion windows of 1/8 of the side
    (8 x 8 of them, 4 px on 32 x 32 as notebook 06's deletion patches), IG's
    :data:`~xai_helpers.class_maps.IG_STEPS`."""
    if method in ("gradcam", "guided_gradcam"):
        return {"layer": layer} if layer else {}
    if method == "cav":
        return {"layer": cav_layer}
    if method == "occlusion":
        side = max(1, size // 8)
        return {"window": side, "stride": side}
    if method == "integrated_gradients":
        return {"n_steps": IG_STEPS}
    return {}


def explain(model: nn.Module, images: torch.Tensor, target=None, *,
            which: Sequence[str] | None = None, layer: str | None = None,
            cav_layer: str = "input", curves: bool = True, steps: int = 8,
            randomisation: bool = False, points: int = 4, floor: bool = True,
            knobs: dict[str, dict] | None = None) -> Explanation:
    """One call from "model + images" to every map and its faithfulness.

    The maps of :func:`xai_helpers.methods.attribute` for ``target`` (``None``: each image's
    top class; an int or one class per image) for every method in ``which`` (``None``: all
    registered) that applies to the model (the others in ``skipped``, with the reason), with
    :func:`settings` (``layer`` for Grad-CAM and Guided Grad-CAM, ``cav_layer`` for CAV;
    ``knobs`` overrides per method). With ``curves``, per image: the patch-deletion area (8 x 8
    cells, black) and the insertion area (from a blurred copy) in ``steps`` steps
    (:mod:`xai_helpers.faithfulness`), and under ``"random"`` (with ``floor``) the same for a
    random order (the floor a map must beat). With ``randomisation``, the cascading
    randomisation check (Adebayo et al. 2018), compared after ``points`` evenly spaced steps of
    the cascade: the mean correlation per image (low = the map depends on the learned weights).
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a tensor N x 3 x H x W with N >= 1 (load_images "
                         f"gives one), got {tuple(getattr(images, 'shape', ()))}")
    with torch.no_grad():
        scores = model(images).float()
    n, size = len(images), images.shape[-1]
    target = (scores.argmax(1) if target is None
              else class_indices(target, n, scores.shape[1], what="target"))
    which = list(methods.METHODS) if which is None else list(which)
    unknown = set(which) - set(methods.METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; the series has "
                         f"{', '.join(methods.METHODS)}")
    maps, skipped, used, seconds = {}, {}, {}, {}
    for name in which:
        try:
            methods.METHODS[name].needs(model)
        except ValueError as err:
            skipped[name] = str(err)
            continue
        used[name] = {**settings(name, size, layer, cav_layer), **(knobs or {}).get(name, {})}
        start = time.perf_counter()
        maps[name] = methods.attribute(name, model, images, target, **used[name])[:, 0]
        seconds[name] = time.perf_counter() - start
    measures = _measures(model, images, target, maps, used, steps, randomisation, points,
                         curves, floor)
    return Explanation(target, scores, maps, skipped, measures, used, seconds)


def _measures(model, images, target, maps, used, steps, randomisation, points, curves, floor):
    measures: dict[str, dict[str, torch.Tensor]] = {}
    if not curves and not randomisation:
        return measures
    size = images.shape[-1]
    noise = torch.rand(len(images), 1, *images.shape[-2:],
                       generator=torch.Generator().manual_seed(0))
    for name, m in ({**maps, "random": noise} if floor and curves else maps).items():
        row = measures.setdefault(name, {})
        if curves:
            row["deletion"] = faithfulness.deletion_curve(
                model, images, target, m, steps=steps, patch=max(1, size // 8)).areas
            row["insertion"] = faithfulness.insertion_curve(
                model, images, target, m, steps=steps).areas
        if randomisation and name != "random":
            row["randomisation"] = faithfulness.randomisation_check(
                model, name, images, target, points=points, **used[name]).per_image
    return measures


def measure_rows(result: Explanation, classes: Sequence[str]) -> list[dict]:
    """One row per image and method: the class explained, the measures, the random order's
    measures beside them (``random_deletion``, ``random_insertion``), the map's time."""
    rows = []
    floor = result.measures.get("random", {})
    for i, t in enumerate(result.target.tolist()):
        for name in result.maps:
            row = {"image": i, "class": t, "class_name": classes[t], "method": name,
                   "seconds_for_batch": round(result.seconds.get(name, math.nan), 4)}
            for measure in MEASURES:
                value = result.measures.get(name, {}).get(measure)
                row[measure] = round(float(value[i]), 4) if value is not None else ""
            for measure in ("deletion", "insertion"):
                value = floor.get(measure)
                row[f"random_{measure}"] = round(float(value[i]), 4) if value is not None else ""
            rows.append(row)
    return rows


def summarise(result: Explanation) -> list[dict]:
    """Per method, over the images: the mean of each measure and, for deletion and insertion,
    the share of images where the map beats the random order on that image (deletion lower,
    insertion higher); the random order's means in the row ``"random"``."""
    floor = result.measures.get("random", {})
    rows = []
    for name, values in result.measures.items():
        row = {"method": name, "n": len(result.target)}
        for measure, v in values.items():
            row[measure] = float(v.float().nanmean())
            if name != "random" and measure in floor:
                beats = v < floor[measure] if measure == "deletion" else v > floor[measure]
                row[f"{measure}_beats_random"] = float(beats.float().mean())
        rows.append(row)
    return rows


def format_summary(rows: list[dict]) -> str:
    """:func:`summarise` as a text table (share of images beating the random order in
    brackets; randomisation: lower = the map depends more on the learned weights)."""
    def cell(row, measure):
        if measure not in row:
            return f"{'-':>18s}"
        share = row.get(f"{measure}_beats_random")
        text = f"{row[measure]:.3f}" + (f" ({share:.0%})" if share is not None else "")
        return f"{text:>18s}"

    head = f"{'method':14s}{'deletion (beats)':>18s}{'insertion (beats)':>18s}{'randomis.':>11s}"
    lines = [head]
    for row in rows:
        title = "random order" if row["method"] == "random" else methods.METHODS[
            row["method"]].title
        rand = f"{row['randomisation']:11.3f}" if "randomisation" in row else f"{'-':>11s}"
        lines.append(f"{title:14s}{cell(row, 'deletion')}{cell(row, 'insertion')}{rand}")
    return "\n".join(lines)


def write_csv(result: Explanation, classes: Sequence[str], path: str | Path, *,
              overwrite: bool = False) -> Path:
    """:func:`measure_rows` as a CSV file; an existing file is kept unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: name another folder or pass overwrite=True")
    rows = measure_rows(result, classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else ["image"])
        writer.writeheader()
        writer.writerows(rows)
    return path
