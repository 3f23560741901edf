"""How faithful a map is: paper 2's decline rate (section 4.7, Eq. 13) and three measures
beyond the paper (deletion, insertion, parameter randomisation), with one table that ranks
the methods on all of them.

Decline rate. A weight map (:func:`xai_helpers.methods.attribute`, N x K x C' x H x W) is
turned into a visual map in four ways (:data:`WAYS`): (i) as is, (ii) its absolute value,
(iii) the weighted blend of the CAM procedure (:func:`blend`), (iv) times the input. The sum
of a class's visual map over all its elements is used as the class score: (A) is the model's
accuracy, (B) the accuracy of the argmax of these sums, and Eq. 13 the decline rate
``(A - B) / A``; smaller = the map reflects the classification more faithfully. Ties among the
sums go to the lowest class index (``torch.argmax``).

Where paper 2 is silent, our choices (all in :func:`blend`): a map with C' > 1 channels is
summed over them (one value per pixel to colour); the map is min-max normalised to [0, 1]
with one range per image, shared by its K class maps (:data:`BLEND_SCALE` = "image"; the
CAM demo code's per-map range, "map", would give every class the same colours and erase the
difference the sum is meant to read); a signed map is not clipped: its most negative value
becomes 0 (dark blue), its largest 1 (dark red); the colours are matplotlib's ``jet``
(:func:`jet`, RGB in [0, 1]); the visual map is ``0.7 * jet(map) + 0.2 * image`` (RGB, a
grey image repeated to 3 channels) and its sum runs over the 3 colour channels and all pixels
(the image term is the same for every class, so only the colours decide).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import nn

from .cav import recording
from .methods import attribute

__all__ = ["WAYS", "WAY_NAMES", "BLEND", "BLEND_SCALE", "DIRECTIONS", "jet", "blend",
           "visual_map", "class_sums", "DeclineRate", "decline_rate", "Curve",
           "deletion_curve", "insertion_curve", "Randomisation", "cascade_layers",
           "randomisation_check", "measures", "summary_table"]

WAYS = ("i", "ii", "iii", "iv")
WAY_NAMES = {"i": "as is", "ii": "absolute value", "iii": "weighted blend 0.7 : 0.2 (jet)",
             "iv": "times the input"}
BLEND = (0.7, 0.2)  # pseudo-coloured weight map : image (paper 2, 4.6; the CAM demo code)
BLEND_SCALE = "image"  # min-max range per image ("image") or per class map ("map")
# matplotlib's jet: (position, value) knots of each colour channel (its _jet_data)
JET = (((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
       ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
       ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)))
# Each measure of summary_table and its direction (True: higher is better)
DIRECTIONS = {"decline_i": False, "decline_ii": False, "decline_iii": False,
              "decline_iv": False, "deletion": False, "insertion": True, "randomisation": False}

MapsFn = Callable[..., torch.Tensor]  # (model, inputs, targets) -> N x T x C' x H x W


def _maps_fn(method: str | MapsFn, knobs: dict) -> tuple[str, MapsFn]:
    """``(name, maps(model, inputs, targets))`` for a registered name or a callable."""
    if callable(method):
        return getattr(method, "__name__", "custom"), method
    return method, lambda model, x, targets=None: attribute(method, model, x, targets, **knobs)


# --------------------------------------------------------------------------- the four ways

def jet(u: torch.Tensor) -> torch.Tensor:
    """matplotlib's ``jet`` colour map, continuous: values in [0, 1] -> RGB (..., 3)."""
    u = u.clamp(0, 1).contiguous()
    channels = []
    for knots in JET:
        xs = torch.tensor([k[0] for k in knots], dtype=u.dtype, device=u.device)
        ys = torch.tensor([k[1] for k in knots], dtype=u.dtype, device=u.device)
        i = torch.searchsorted(xs, u, right=True).clamp(1, len(xs) - 1)
        t = (u - xs[i - 1]) / (xs[i] - xs[i - 1])
        channels.append(ys[i - 1] + t * (ys[i] - ys[i - 1]))
    return torch.stack(channels, dim=-1)


def blend(maps: torch.Tensor, images: torch.Tensor, *, scale: str = BLEND_SCALE) -> torch.Tensor:
    """Way (iii), the CAM procedure (paper 2, 4.6): ``0.7 * jet(normalised map) + 0.2 * image``,
    N x T x 3 x H x W, normalised as the module docstring says (the one place of that choice).
    """
    if scale not in ("image", "map"):
        raise ValueError(f"scale must be 'image' or 'map', not {scale!r}")
    m = maps.sum(2)  # N x T x H x W: one value per pixel
    dims = (1, 2, 3) if scale == "image" else (2, 3)
    lo, hi = m.amin(dim=dims, keepdim=True), m.amax(dim=dims, keepdim=True)
    u = torch.where(hi > lo, (m - lo) / (hi - lo).clamp_min(1e-30), torch.zeros_like(m))
    rgb = images if images.shape[1] == 3 else images.expand(-1, 3, -1, -1)
    weight_map, weight_image = BLEND
    return weight_map * jet(u).movedim(-1, 2) + weight_image * rgb.unsqueeze(1)


def visual_map(maps: torch.Tensor, images: torch.Tensor, way: str) -> torch.Tensor:
    """The visual map of way ``way`` (:data:`WAYS`) of weight maps N x T x C' x H x W."""
    if maps.ndim != 5 or images.ndim != 4 or maps.shape[0] != images.shape[0]:
        raise ValueError(f"maps must be N x T x C' x H x W and images N x C x H x W, got "
                         f"{tuple(maps.shape)} and {tuple(images.shape)}")
    images = images.to(maps)
    if way == "i":
        return maps
    if way == "ii":
        return maps.abs()
    if way == "iii":
        return blend(maps, images)
    if way == "iv":
        return maps * images.unsqueeze(1)
    raise ValueError(f"way must be one of {WAYS} ({WAY_NAMES}), not {way!r}")


def class_sums(maps: torch.Tensor, images: torch.Tensor, way: str) -> torch.Tensor:
    """N x T: the sum of each class's visual map over all its elements (paper 2, 4.7)."""
    return visual_map(maps, images, way).flatten(2).sum(2)


# --------------------------------------------------------------------------- decline rate

@dataclass(frozen=True)
class DeclineRate:
    """One row of paper 2's Table 8 (lost): a method and a way, Eq. 13."""

    method: str
    way: str
    accuracy_a: float  # the network's accuracy
    accuracy_b: float  # accuracy of the argmax of the class sums of the visual maps
    decline_rate: float  # (A - B) / A; nan when A = 0
    n_images: int
    higher_is_better: bool = field(default=False, repr=False)

    def as_row(self) -> dict:
        """The CSV columns: method, way, accuracy_a, accuracy_b, decline_rate, n_images."""
        row = asdict(self)
        row.pop("higher_is_better")
        return row


def decline_rate(model: nn.Module, method: str | MapsFn, inputs: torch.Tensor,
                 labels: torch.Tensor, *, ways: Sequence[str] = WAYS, batch_size: int = 250,
                 **knobs) -> list[DeclineRate]:
    """Paper 2's decline rate (4.7, Eq. 13) of ``method`` for each of ``ways``.

    ``method`` is a name of :data:`xai_helpers.methods.METHODS` (``knobs`` go to it) or a
    callable ``(model, inputs, targets) -> maps`` (``targets=None``: all classes,
    N x K x C' x H x W). The maps of all K classes are computed once per batch of
    ``batch_size`` images and read in every way.
    """
    name, maps_of = _maps_fn(method, knobs)
    for way in ways:
        if way not in WAYS:
            raise ValueError(f"way must be one of {WAYS}, not {way!r}")
    labels = torch.as_tensor(labels).long().cpu()
    param = next(model.parameters(), None)
    correct_a, correct_b = 0, dict.fromkeys(ways, 0)
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(inputs), batch_size):
            x, y = inputs[i:i + batch_size], labels[i:i + batch_size]
            with torch.no_grad():
                logits = model(x.to(param.device) if param is not None else x).cpu()
            correct_a += int((logits.argmax(1) == y).sum())
            maps = maps_of(model, x, None).cpu()
            for way in ways:
                correct_b[way] += int((class_sums(maps, x.cpu(), way).argmax(1) == y).sum())
    finally:
        model.train(was_training)
    n = len(labels)
    a = correct_a / n
    return [DeclineRate(name, way, a, correct_b[way] / n,
                        (a - correct_b[way] / n) / a if a > 0 else math.nan, n)
            for way in ways]


# --------------------------------------------------------------------------- deletion, insertion

@dataclass(frozen=True)
class Curve:
    """Deletion or insertion curve (Petsiuk et al., BMVC 2018, RISE, section 4.1)."""

    kind: str  # "deletion" or "insertion"
    fractions: torch.Tensor  # (steps + 1,) share of the pixels deleted / inserted
    scores: torch.Tensor  # N x (steps + 1): softmax probability of the target class
    area: float  # mean over the images of the area under the curve (trapezoid rule)
    higher_is_better: bool


def _blurred(x: torch.Tensor) -> torch.Tensor:
    """Gaussian blur with sigma = 1/8 of the image side (4 px on 32 x 32), reflect padding."""
    sigma = max(x.shape[-2:]) / 8
    radius = max(1, min(math.ceil(3 * sigma), x.shape[-2] - 1, x.shape[-1] - 1))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-t ** 2 / (2 * sigma ** 2))
    kernel = (kernel / kernel.sum()).repeat(x.shape[1], 1)[:, None]  # C x 1 x k
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, kernel[..., None, :], groups=x.shape[1])
    return F.conv2d(y, kernel[..., :, None], groups=x.shape[1])


def _baseline(x: torch.Tensor, baseline) -> torch.Tensor:
    if isinstance(baseline, torch.Tensor):
        return baseline.to(x).expand_as(x)
    if baseline == "zero":
        return torch.zeros_like(x)
    if baseline == "blur":
        return _blurred(x)
    if isinstance(baseline, (int, float)):
        return torch.full_like(x, float(baseline))
    raise ValueError(f"baseline must be 'zero', 'blur', a number or a tensor, not {baseline!r}")


def _pixel_ranks(maps: torch.Tensor, patch: int) -> torch.Tensor:
    """N x (H W): each pixel's place in the order of removal, most important first. With
    ``patch`` > 1 the map is summed over patch x patch cells and whole cells go in turn."""
    n, _, h, w = maps.shape
    if h % patch or w % patch:
        raise ValueError(f"patch {patch} does not divide the image size {h} x {w}")
    cells = F.avg_pool2d(maps.sum(1, keepdim=True).float().cpu(), patch)  # N x 1 x h/p x w/p
    order = cells.flatten(1).argsort(dim=1, descending=True, stable=True)
    cell_rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1]).expand(
        n, -1)).view(n, h // patch, w // patch)
    inside = torch.arange(patch * patch).view(patch, patch).repeat(h // patch, w // patch)
    big = cell_rank.repeat_interleave(patch, 1).repeat_interleave(patch, 2)
    return (big * patch * patch + inside).flatten(1)


def _curve(model, inputs, target, maps, steps, baseline, insert, batch_size,
           patch: int = 1) -> Curve:
    n, _, h, w = inputs.shape
    if maps.ndim == 5 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.ndim != 4 or maps.shape[0] != n or maps.shape[-2:] != (h, w):
        raise ValueError(f"maps must be N x C' x H x W (one map per image, of its target), "
                         f"got {tuple(maps.shape)} for inputs {tuple(inputs.shape)}")
    target = torch.as_tensor(target).long().expand(n).cpu()
    rank = _pixel_ranks(maps, patch)
    counts = [round(s * h * w / steps) for s in range(steps + 1)]
    param = next(model.parameters(), None)
    device = param.device if param is not None else inputs.device
    scores = torch.zeros(n, steps + 1)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, n, batch_size):
                x = inputs[i:i + batch_size].to(device)
                base, r = _baseline(x, baseline), rank[i:i + batch_size].to(device)
                rows = torch.arange(len(x))
                for s, count in enumerate(counts):
                    chosen = (r < count).view(len(x), 1, h, w)
                    xs = torch.where(chosen, x, base) if insert else torch.where(chosen, base, x)
                    p = torch.softmax(model(xs).float(), dim=1).cpu()
                    scores[i:i + batch_size, s] = p[rows, target[i:i + batch_size]]
    finally:
        model.train(was_training)
    fractions = torch.tensor(counts, dtype=torch.float32) / (h * w)
    area = float(torch.trapezoid(scores, fractions, dim=1).mean())
    return Curve("insertion" if insert else "deletion", fractions, scores, area, insert)


# Deletion removes 4 x 4 patches (region perturbation, Samek et al. 2017), not single pixels:
# with pixels deleted to black 64 at a time, a random order beat all nine maps of notebook 06
# (the network reacts to scattered black dots more than to evidence). 4 x 4 is one cell of the
# CIFAR-10 networks' last 8 x 8 feature maps, the resolution of CAM and Grad-CAM.
DELETION_PATCH = 4


def deletion_curve(model: nn.Module, inputs: torch.Tensor, target, maps: torch.Tensor, *,
                   steps: int = 16, baseline="zero", patch: int = DELETION_PATCH,
                   batch_size: int = 500) -> Curve:
    """Deletion (Petsiuk et al. 2018, 4.1) by patches (Samek et al. 2017): the ``patch`` x
    ``patch`` cells (all channels; :data:`DELETION_PATCH`) are replaced by ``baseline``
    (default 0, black), most important first (the target's map summed over channels and over
    each cell, ties by position), in ``steps`` equal steps; the target's softmax probability
    after each step. A faithful map makes it fall fast: lower area is better."""
    return _curve(model, inputs, target, maps, steps, baseline, False, batch_size, patch)


def insertion_curve(model: nn.Module, inputs: torch.Tensor, target, maps: torch.Tensor, *,
                    steps: int = 16, baseline="blur", patch: int = 1,
                    batch_size: int = 500) -> Curve:
    """Insertion (Petsiuk et al. 2018, 4.1): start from ``baseline`` (default a blurred copy,
    sigma = 1/8 of the side) and put the original pixels (or ``patch`` x ``patch`` cells) back,
    most important first; a faithful map makes the probability rise fast: higher is better."""
    return _curve(model, inputs, target, maps, steps, baseline, True, batch_size, patch)


# --------------------------------------------------------------------------- randomisation

@dataclass(frozen=True)
class Randomisation:
    """Cascading model-parameter randomisation (Adebayo et al., NeurIPS 2018, section 3.1)."""

    method: str
    layers: tuple[str, ...]  # randomised cumulatively, from the output towards the input
    correlation: torch.Tensor  # L x N: Spearman rank correlation with the original maps
    higher_is_better: bool = field(default=False, repr=False)

    @property
    def score(self) -> float:
        """Mean correlation over the cascade and the images where it is defined: low = the map
        depends on the learned parameters (passes the sanity check)."""
        return float(self.correlation.nanmean())

    @property
    def undefined(self) -> float:
        """Share of layer-image pairs whose correlation is undefined (a constant map, e.g. all
        zero after re-initialisation: nothing to rank), left out of :attr:`score`."""
        return float(self.correlation.isnan().float().mean())


def cascade_layers(model: nn.Module, inputs: torch.Tensor, batchnorm: bool = False) -> list[str]:
    """The layers with weights (convolutions, linear; batch norm too if ``batchnorm``, as
    Quantus re-initialises it) in reverse order of the forward pass: the cascade, top first."""
    names = [n for n, m in model.named_modules() if n and hasattr(m, "reset_parameters")
             and next(m.children(), None) is None and getattr(m, "weight", None) is not None
             and (batchnorm or not isinstance(m, nn.modules.batchnorm._BatchNorm))]
    param = next(model.parameters(), None)
    with torch.no_grad(), recording(model, names) as calls:
        model(inputs[:1].to(param.device) if param is not None else inputs[:1])
    return list(reversed(list(dict.fromkeys(c.name for c in calls))))


def _spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Spearman rank correlation (average ranks for ties); NaN (undefined) where a row
    is constant: a map with nothing to rank neither agrees nor disagrees (as Quantus)."""
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    norm = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    return np.where(norm > 0, (ra * rb).sum(1) / np.where(norm > 0, norm, 1), np.nan)


def randomisation_check(model: nn.Module, method: str | MapsFn, inputs: torch.Tensor, target,
                        *, layers: Sequence[str] | None = None, absolute: bool = True,
                        batchnorm: bool = False, seed: int = 0, **knobs) -> Randomisation:
    """Re-initialise ``layers`` (default :func:`cascade_layers`, with batch norm if
    ``batchnorm``) one after the other from the top, in a copy of the model (PyTorch's default
    initialisation, seeded), and after each compare the target's maps (summed over channels,
    absolute values if ``absolute``) with the original ones by Spearman rank correlation, per
    image (Adebayo et al. 2018, Fig. 2); undefined (NaN) where a map is constant."""
    name, maps_of = _maps_fn(method, knobs)

    def flat(net):
        m = maps_of(net, inputs, target)[:, 0].sum(1).flatten(1).double().numpy()
        return np.abs(m) if absolute else m

    layers = list(layers) if layers is not None else cascade_layers(model, inputs, batchnorm)
    original, net = flat(model), copy.deepcopy(model)
    rows = []
    for i, layer in enumerate(layers):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            net.get_submodule(layer).reset_parameters()
        rows.append(torch.from_numpy(_spearman(original, flat(net))).float())
    correlation = torch.stack(rows) if rows else torch.zeros(0, len(inputs))
    return Randomisation(name, tuple(layers), correlation)


# --------------------------------------------------------------------------- summary

def measures(model: nn.Module, method: str | MapsFn, inputs: torch.Tensor,
             labels: torch.Tensor, *, steps: int = 16, **knobs) -> dict[str, float]:
    """Every measure of :data:`DIRECTIONS` for one method on the same images (the true class
    is the target of the curves and of the randomisation check)."""
    out = {f"decline_{r.way}": r.decline_rate
           for r in decline_rate(model, method, inputs, labels, **knobs)}
    _, maps_of = _maps_fn(method, knobs)
    maps = maps_of(model, inputs, labels)
    out["deletion"] = deletion_curve(model, inputs, labels, maps, steps=steps).area
    out["insertion"] = insertion_curve(model, inputs, labels, maps, steps=steps).area
    out["randomisation"] = randomisation_check(model, method, inputs, labels, **knobs).score
    return out


def summary_table(results: dict[str, dict[str, float]],
                  directions: dict[str, bool] = DIRECTIONS) -> list[dict]:
    """One row per method: its measures, its rank on each (1 = best, following the measure's
    direction; ties share the better rank; missing or nan values are not ranked) and the mean
    of its ranks; rows sorted by mean rank."""
    rows = {name: {"method": name, **values} for name, values in results.items()}
    for measure, higher in directions.items():
        valid = {name: v[measure] for name, v in results.items()
                 if measure in v and v[measure] is not None and math.isfinite(v[measure])}
        for name, value in valid.items():
            better = sum((w > value) if higher else (w < value) for w in valid.values())
            rows[name][f"rank_{measure}"] = 1 + better
    for row in rows.values():
        ranks = [v for k, v in row.items() if k.startswith("rank_")]
        row["mean_rank"] = sum(ranks) / len(ranks) if ranks else math.nan
    return sorted(rows.values(), key=lambda r: (math.isnan(r["mean_rank"]), r["mean_rank"],
                                                r["method"]))
