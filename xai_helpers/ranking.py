"""Intervals and ranks for the faithfulness measures of notebook 06: how sure each number is,
which differences the images can tell apart, and which values hold by construction.

Every measure of :data:`MEASURES` is a ratio of sums over images: the decline rate (paper 2,
Eq. 13) is ``sum(right_A - right_B) / sum(right_A)``, a curve area the mean of the images'
areas, the randomisation score the mean over the defined (layer, image) pairs. So one
bootstrap (Efron and Tibshirani 1993) covers them all: draw the images with replacement,
recompute the ratio, repeat (:data:`N_BOOT` times), and read the 2.5th and 97.5th percentiles.
All methods are resampled with the *same* draws (the images are shared), so two methods are
compared on the bootstrap distribution of their *difference* (paired): they are **separated**
when its 95 % interval excludes 0.

Ranks (:func:`rank_table`): a method's rank on a measure is 1 + the number of methods that
beat it *separately*; methods the images cannot tell apart share a rank. Values that hold by
construction (:data:`BY_CONSTRUCTION`: GCM's CCM sums to its score, so way (i) cannot lose a
thing; CWM x image is the CCM, so way (iv) cannot either) are marked and not ranked: they
are Eq. 4 of paper 2, not evidence. There is no mean rank: averaging ranks would weigh the
four decline columns against the four others, a choice the numbers cannot make for you.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .decline import WAYS, DeclineRate, decline_rate
from .faithfulness import (
    Curve,
    FaithfulnessCorrelation,
    Randomisation,
    deletion_curve,
    faithfulness_correlation,
    insertion_curve,
    randomisation_check,
)
from .methods import maps_function

__all__ = ["MEASURES", "DIRECTIONS", "BY_CONSTRUCTION", "N_BOOT", "LEVEL", "PerImage",
           "per_image", "Interval", "bootstrap", "separated", "rank_table", "measures",
           "format_table"]

# Each measure and its direction (True: higher is better)
DIRECTIONS = {**{f"decline_{w}": False for w in WAYS}, "deletion": False, "insertion": True,
              "randomisation": False, "faithfulness_correlation": True}
MEASURES = tuple(DIRECTIONS)
# (method, measure) pairs whose value is fixed by the method's definition (paper 2, Eq. 3-4)
BY_CONSTRUCTION = {("ccm", "decline_i"): "the CCM's sum is R x C x D times GCM's score (Eq. 4)",
                   ("cwm", "decline_iv"): "CWM x image is the CCM (Eq. 3)"}
N_BOOT = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class PerImage:
    """A measure as ``sum(numerator) / sum(denominator)`` over images, (N,) each."""

    numerator: np.ndarray
    denominator: np.ndarray

    @property
    def value(self) -> float:
        den = self.denominator.sum()
        return float(self.numerator.sum() / den) if den > 0 else math.nan


def per_image(result) -> PerImage:
    """The per-image terms of a measure's result: a :class:`~xai_helpers.decline.DeclineRate`
    (with its ``correct_a`` / ``correct_b``), a :class:`~xai_helpers.faithfulness.Curve`, a
    :class:`~xai_helpers.faithfulness.Randomisation` or a
    :class:`~xai_helpers.faithfulness.FaithfulnessCorrelation` (NaNs left out), or a plain
    (N,) array of per-image values (their mean)."""
    if isinstance(result, DeclineRate):
        if result.correct_a is None:
            raise ValueError("this DeclineRate has no per-image results (read from a CSV?): "
                             "intervals need correct_a and correct_b")
        a, b = (np.asarray(t, dtype=float) for t in (result.correct_a, result.correct_b))
        return PerImage(a - b, a)
    if isinstance(result, Curve):
        values = result.areas.double().numpy()
        return PerImage(values, np.ones_like(values))
    if isinstance(result, Randomisation):
        c = result.correlation.double().numpy()  # L x N
        return PerImage(np.nansum(c, 0), (~np.isnan(c)).sum(0).astype(float))
    if isinstance(result, FaithfulnessCorrelation):
        result = result.correlation
    values = np.asarray(result.numpy() if isinstance(result, torch.Tensor) else result, float)
    if values.ndim != 1:
        raise ValueError(f"per-image values must have shape (N,), got {values.shape}")
    defined = ~np.isnan(values)
    return PerImage(np.where(defined, values, 0.0), defined.astype(float))


@dataclass(frozen=True)
class Interval:
    """A measure's value, its bootstrap percentile interval, and the bootstrap draws."""

    value: float
    low: float
    high: float
    draws: np.ndarray  # (n_boot,), the same image draws for every method

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """n_boot x n: how often each image is drawn in each bootstrap sample."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float32)


def bootstrap(results: dict, *, n_boot: int = N_BOOT, level: float = LEVEL,
              seed: int = 0) -> dict[str, Interval]:
    """Percentile intervals of one measure for several methods on the same images, from the
    same ``n_boot`` resamplings of the images (``results``: method -> a result or
    :class:`PerImage`; see :func:`per_image`)."""
    terms = {k: v if isinstance(v, PerImage) else per_image(v) for k, v in results.items()}
    sizes = {len(t.numerator) for t in terms.values()}
    if len(sizes) != 1:
        raise ValueError(f"the methods were measured on different numbers of images "
                         f"({sorted(sizes)}): a paired bootstrap needs the same images")
    w = _weights(sizes.pop(), n_boot, seed)
    out = {}
    for name, t in terms.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            draws = ((w @ t.numerator.astype(np.float32)).astype(float)
                     / (w @ t.denominator.astype(np.float32)))
        defined = draws[np.isfinite(draws)]  # a resample where the measure is undefined
        lo, hi = (np.quantile(defined, [(1 - level) / 2, (1 + level) / 2]) if len(defined)
                  else (math.nan, math.nan))
        out[name] = Interval(t.value, float(lo), float(hi), draws)
    return out


def separated(a: Interval, b: Interval, level: float = LEVEL) -> bool:
    """True when the ``level`` interval of the paired difference ``a - b`` excludes 0."""
    diff = a.draws - b.draws
    diff = diff[np.isfinite(diff)]
    if not len(diff):
        return False
    lo, hi = np.quantile(diff, [(1 - level) / 2, (1 + level) / 2])
    return bool(lo > 0 or hi < 0)


def rank_table(results: dict[str, dict], *, directions: dict[str, bool] = DIRECTIONS,
               by_construction=BY_CONSTRUCTION, n_boot: int = N_BOOT, level: float = LEVEL,
               seed: int = 0) -> list[dict]:
    """One row per method (in the order of ``results``: method -> measure -> result): for each
    measure its :class:`Interval` (``row[measure]``), its rank (``row["rank_" + measure]``:
    1 + the methods that beat it separately, :func:`separated`; ``None`` when the value holds
    by construction or is undefined) and, for by-construction values, the reason
    (``row["why_" + measure]``)."""
    rows = {name: {"method": name} for name in results}
    for measure, higher in directions.items():
        have = {name: r[measure] for name, r in results.items() if measure in r}
        if not have:
            continue
        found = bootstrap(have, n_boot=n_boot, level=level, seed=seed)
        ranked = {name: iv for name, iv in found.items() if math.isfinite(iv.value)
                  and (name, measure) not in by_construction}
        for name, iv in found.items():
            rows[name][measure] = iv
            if (name, measure) in by_construction:
                rows[name]["why_" + measure] = by_construction[name, measure]
            better = sum(1 for other, o in ranked.items() if other != name
                         and ((o.value > iv.value) if higher else (o.value < iv.value))
                         and separated(o, iv, level))
            rows[name]["rank_" + measure] = 1 + better if name in ranked else None
    return list(rows.values())


def measures(model, method, inputs: torch.Tensor, labels: torch.Tensor, *, steps: int = 16,
             **knobs) -> dict:
    """Every measure of :data:`MEASURES` for one method on the same images, as results that
    :func:`rank_table` takes (the true class is the target of all but the decline rate, which
    reads every class): ``{"decline_i": DeclineRate, ..., "deletion": Curve, ...}``."""
    name, maps_of = maps_function(method, **knobs)
    out = {f"decline_{r.way}": r for r in decline_rate(model, maps_of, inputs, labels)}
    maps = maps_of(model, inputs, labels)
    out["deletion"] = deletion_curve(model, inputs, labels, maps, steps=steps)
    out["insertion"] = insertion_curve(model, inputs, labels, maps, steps=steps)
    out["randomisation"] = randomisation_check(model, maps_of, inputs, labels)
    out["faithfulness_correlation"] = faithfulness_correlation(model, inputs, labels, maps)
    return out


HEADERS = {**{f"decline_{w}": f"decline ({w})" for w in WAYS},
           "faithfulness_correlation": "faithf. corr."}  # short column titles


def format_table(rows: Sequence[dict], labels: dict[str, str] | None = None,
                 directions: dict[str, bool] = DIRECTIONS) -> str:
    """:func:`rank_table`'s rows as text: per method and measure ``value (rank)``, ``(=)``
    for a value that holds by construction, ``(-)`` where undefined."""
    labels = labels or {}
    shown = [m for m in directions if any(m in r for r in rows)]
    width = max(10, *(len(labels.get(r["method"], r["method"])) + 1 for r in rows))
    lines = [f"{'':<{width}}" + "".join(f"{HEADERS.get(m, m):>14}" for m in shown),
             f"{'better:':<{width}}" + "".join(
                 f"{'higher' if directions[m] else 'lower':>14}" for m in shown)]
    for row in rows:
        cells = []
        for m in shown:
            if m not in row:
                cells.append("")
                continue
            rank = row.get("rank_" + m)
            mark = "=" if "why_" + m in row else ("-" if rank is None else str(rank))
            cells.append(f"{row[m].value:+.3f} ({mark})")
        lines.append(f"{labels.get(row['method'], row['method']):<{width}}"
                     + "".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)
