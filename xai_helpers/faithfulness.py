"""How faithful a map is, beyond paper 2's decline rate: deletion and insertion curves,
the cascading parameter-randomisation check, and faithfulness correlation. Each function
takes the maps a method computed (or the method itself, for the randomisation check) and
returns one value per image, so that :mod:`xai_helpers.ranking` can put intervals on them.

Three families, three questions:

* **order** (deletion, insertion; Petsiuk et al. 2018, Samek et al. 2017): do the pixels the
  map ranks first change the prediction first?
* **parameters** (randomisation; Adebayo et al. 2018): does the map change when the learned
  weights are destroyed?
* **amount** (faithfulness correlation; Bhatt et al. 2020): over random subsets of input
  values, does the map's sum over a subset track how much the class score drops when that
  subset is removed?
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import nn

from .cav import recording
from .checks import class_indices
from .methods import MapsFn, maps_function

__all__ = ["Curve", "DELETION_PATCH", "deletion_curve", "insertion_curve", "Randomisation",
           "cascade_layers", "randomisation_check", "FaithfulnessCorrelation",
           "SUBSET_SIZE", "RUNS", "random_subsets", "output_drops", "faithfulness_correlation"]


# --------------------------------------------------------------------------- deletion, insertion

@dataclass(frozen=True)
class Curve:
    """Deletion or insertion curve (Petsiuk et al., BMVC 2018, RISE, section 4.1)."""

    kind: str  # "deletion" or "insertion"
    fractions: torch.Tensor  # (steps + 1,) share of the pixels deleted / inserted
    scores: torch.Tensor  # N x (steps + 1): softmax probability of the target class
    area: float  # mean over the images of the area under the curve (trapezoid rule)
    higher_is_better: bool

    @property
    def areas(self) -> torch.Tensor:
        """(N,): each image's area under its curve (their mean is :attr:`area`)."""
        return torch.trapezoid(self.scores, self.fractions, dim=1)


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


def _baseline(x: torch.Tensor, baseline, rows: slice = slice(None)) -> torch.Tensor:
    """The baseline images of the batch ``x`` (images ``rows`` of the whole set): "zero"
    (black), "blur", a number, or a tensor (one image, or one per image of the whole set)."""
    if isinstance(baseline, torch.Tensor):
        if baseline.ndim == x.ndim and len(baseline) > 1:
            baseline = baseline[rows]
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


def _target(model: nn.Module, inputs: torch.Tensor, target, device) -> torch.Tensor:
    """``target`` as (N,) classes of ``model`` (checked against its number of classes)."""
    with torch.no_grad():
        k = model(inputs[:1].to(device)).shape[1]
    return class_indices(target, len(inputs), k)


def _curve(model, inputs, target, maps, steps, baseline, insert, batch_size,
           patch: int = 1) -> Curve:
    n, _, h, w = inputs.shape
    if maps.ndim == 5 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.ndim != 4 or maps.shape[0] != n or maps.shape[-2:] != (h, w):
        raise ValueError(f"maps must be N x C' x H x W (one map per image, of its target), "
                         f"got {tuple(maps.shape)} for inputs {tuple(inputs.shape)}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else inputs.device
    target = _target(model, inputs, target, device)
    rank = _pixel_ranks(maps, patch)
    counts = [round(s * h * w / steps) for s in range(steps + 1)]
    scores = torch.zeros(n, steps + 1)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, n, batch_size):
                x = inputs[i:i + batch_size].to(device)
                base = _baseline(x, baseline, slice(i, i + batch_size))
                r = rank[i:i + batch_size].to(device)
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

    @property
    def per_image(self) -> torch.Tensor:
        """(N,): each image's mean correlation over the cascade (NaN: undefined at every
        layer)."""
        return self.correlation.nanmean(0)


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
                        batchnorm: bool = False, seed: int = 0, points: int | None = None,
                        **knobs) -> Randomisation:
    """Re-initialise ``layers`` (default :func:`cascade_layers`, with batch norm if
    ``batchnorm``) one after the other from the top, in a copy of the model (PyTorch's default
    initialisation, seeded), and after each compare the target's maps (summed over channels,
    absolute values if ``absolute``) with the original ones by Spearman rank correlation, per
    image (Adebayo et al. 2018, Fig. 2); undefined (NaN) where a map is constant.
    ``points``: compare only after that many evenly spaced steps of the cascade (the last
    always; the randomisation stays cumulative), to save the maps' cost on a large model; the
    result's ``layers`` are then the layers after which it compared."""
    name, maps_of = maps_function(method, **knobs)

    def flat(net):
        m = maps_of(net, inputs, target)[:, 0].sum(1).flatten(1).double().numpy()
        return np.abs(m) if absolute else m

    layers = list(layers) if layers is not None else cascade_layers(model, inputs, batchnorm)
    if points is not None and points < 1:
        raise ValueError(f"points must be a positive number of comparisons, not {points}")
    at = (set(range(len(layers))) if points is None or points >= len(layers) else
          {round((j + 1) * len(layers) / points) - 1 for j in range(points)})
    original, net = flat(model), copy.deepcopy(model)
    rows, compared = [], []
    for i, layer in enumerate(layers):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            net.get_submodule(layer).reset_parameters()
        if i in at:
            rows.append(torch.from_numpy(_spearman(original, flat(net))).float())
            compared.append(layer)
    correlation = torch.stack(rows) if rows else torch.zeros(0, len(inputs))
    return Randomisation(name, tuple(compared), correlation)


# --------------------------------------------------------------------------- faithfulness corr.

# Quantus's defaults (FaithfulnessCorrelation, 0.6.0): 100 random subsets of 224 input values
# per image. On a 3 x 32 x 32 CIFAR-10 image, 224 values are 7.3% of the image.
RUNS = 100
SUBSET_SIZE = 224


@dataclass(frozen=True)
class FaithfulnessCorrelation:
    """Faithfulness correlation (Bhatt et al., IJCAI 2020, Eq. 2), per image."""

    correlation: torch.Tensor  # (N,): Pearson correlation over the runs; NaN where undefined
    runs: int
    subset_size: int
    higher_is_better: bool = field(default=True, repr=False)

    @property
    def score(self) -> float:
        """Mean correlation over the images where it is defined: high = the map's sums over
        random subsets track the score drops their removal causes."""
        return float(self.correlation.nanmean())

    @property
    def undefined(self) -> float:
        """Share of images whose correlation is undefined (a constant map or constant drops)."""
        return float(self.correlation.isnan().float().mean())

    @property
    def per_image(self) -> torch.Tensor:
        return self.correlation


def random_subsets(n: int, n_features: int, *, runs: int = RUNS, size: int = SUBSET_SIZE,
                   seed: int = 0) -> torch.Tensor:
    """N x runs x size: for each image and run, ``size`` distinct indices of the flattened
    C x H x W input drawn uniformly (seeded; the same for every method on the same images)."""
    if not 0 < size <= n_features:
        raise ValueError(f"size must be between 1 and {n_features} (the input values), not "
                         f"{size}")
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.rand(runs, n_features, generator=g).argsort(1)[:, :size]
                        for _ in range(n)])


def output_drops(model: nn.Module, inputs: torch.Tensor, target, subsets: torch.Tensor, *,
                 baseline="zero", softmax: bool = False, batch_size: int = 1000) -> torch.Tensor:
    """N x runs: ``f_t(x) - f_t(x with the subset's values replaced by baseline)`` for each
    image's ``subsets`` (:func:`random_subsets`), ``f_t`` the target's logit (softmax
    probability if ``softmax``). They depend on the model and the subsets, not on any map:
    compute them once per model and pass them to :func:`faithfulness_correlation`."""
    n, runs = subsets.shape[:2]
    param = next(model.parameters(), None)
    device = param.device if param is not None else inputs.device
    target = _target(model, inputs, target, device)

    def score(x, t):
        z = model(x).float()
        z = torch.softmax(z, 1) if softmax else z
        return z[torch.arange(len(x)), t].cpu()

    drops = torch.zeros(n, runs)
    per = max(1, batch_size // runs)  # images per pass
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, n, per):
                x = inputs[i:i + per].to(device)
                t = target[i:i + per]
                base = _baseline(x, baseline, slice(i, i + per)).flatten(1)
                base = base.repeat_interleave(runs, 0)
                idx = subsets[i:i + per].flatten(0, 1).to(device)
                xs = x.flatten(1).repeat_interleave(runs, 0)
                xs = xs.scatter(1, idx, base.gather(1, idx)).view(-1, *x.shape[1:])
                drops[i:i + per] = score(x, t)[:, None] - score(
                    xs, t.repeat_interleave(runs)).view(len(x), runs)
    finally:
        model.train(was_training)
    return drops


def faithfulness_correlation(model: nn.Module, inputs: torch.Tensor, target,
                             maps: torch.Tensor, *, runs: int = RUNS,
                             subset_size: int = SUBSET_SIZE, baseline="zero",
                             softmax: bool = False, seed: int = 0,
                             subsets: torch.Tensor | None = None,
                             drops: torch.Tensor | None = None) -> FaithfulnessCorrelation:
    """Faithfulness correlation (Bhatt et al. 2020, Eq. 2; Quantus's FaithfulnessCorrelation):
    per image, the Pearson correlation over ``runs`` random subsets S of the input values
    between the map's sum over S and the drop of the target's logit when S is set to
    ``baseline`` (default 0, black). ``maps``: N x C' x H x W, the target's map (a per-pixel
    map, C' = 1, counts once per colour channel, as Quantus broadcasts it). Pass ``subsets``
    and ``drops`` (:func:`random_subsets`, :func:`output_drops`) to share them between
    methods; otherwise they are drawn with ``seed`` and computed here."""
    n = len(inputs)
    if maps.ndim == 5 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.ndim != 4 or maps.shape[0] != n or maps.shape[-2:] != inputs.shape[-2:]:
        raise ValueError(f"maps must be N x C' x H x W (one map per image, of its target), "
                         f"got {tuple(maps.shape)} for inputs {tuple(inputs.shape)}")
    if subsets is None:
        subsets = random_subsets(n, inputs[0].numel(), runs=runs, size=subset_size, seed=seed)
    if drops is None:
        drops = output_drops(model, inputs, target, subsets, baseline=baseline,
                             softmax=softmax)
    if drops.shape != subsets.shape[:2]:
        raise ValueError(f"drops {tuple(drops.shape)} do not match subsets "
                         f"{tuple(subsets.shape)}: compute both for the same images and runs")
    flat = maps.double().cpu().expand(n, *inputs.shape[1:]).flatten(1)
    sums = flat.gather(1, subsets.flatten(1)).view(subsets.shape).sum(-1)  # N x runs
    return FaithfulnessCorrelation(_pearson(sums, drops.double()).float(), subsets.shape[1],
                                   subsets.shape[2])


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation; NaN where a row is constant."""
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    norm = (a.square().sum(1) * b.square().sum(1)).sqrt()
    return torch.where(norm > 0, (a * b).sum(1) / norm.clamp_min(1e-300),
                       torch.full_like(norm, math.nan))
