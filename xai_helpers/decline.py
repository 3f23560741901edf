"""Paper 2's decline rate (乖離率, section 4.7, Eq. 13): how much accuracy is lost when the
class is read off the maps instead of the network. The measures beyond the paper are in
:mod:`xai_helpers.faithfulness`; intervals and ranks of all of them in
:mod:`xai_helpers.ranking`.

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

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checks import class_indices
from .methods import MapsFn, maps_function

__all__ = ["WAYS", "WAY_NAMES", "BLEND", "BLEND_SCALE", "jet", "blend", "visual_map",
           "class_sums", "DeclineRate", "decline_rate", "write_results", "read_results",
           "read_or_measure"]

WAYS = ("i", "ii", "iii", "iv")
WAY_NAMES = {"i": "as is", "ii": "absolute value", "iii": "weighted blend 0.7 : 0.2 (jet)",
             "iv": "times the input"}
BLEND = (0.7, 0.2)  # pseudo-coloured weight map : image (paper 2, 4.6; the CAM demo code)
BLEND_SCALE = "image"  # min-max range per image ("image") or per class map ("map")
# matplotlib's jet: (position, value) knots of each colour channel (its _jet_data)
JET = (((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
       ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
       ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)))


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
    # (N,) per image: the network right (A), the argmax of the class sums right (B)
    correct_a: torch.Tensor | None = field(default=None, repr=False, compare=False)
    correct_b: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def as_row(self) -> dict:
        """The CSV columns: method, way, accuracy_a, accuracy_b, decline_rate, n_images."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("higher_is_better", "correct_a", "correct_b")}


def decline_rate(model: nn.Module, method: str | MapsFn, inputs: torch.Tensor,
                 labels: torch.Tensor, *, ways: Sequence[str] = WAYS, batch_size: int = 250,
                 **knobs) -> list[DeclineRate]:
    """Paper 2's decline rate (4.7, Eq. 13) of ``method`` for each of ``ways``.

    ``method`` is a name of :data:`xai_helpers.methods.METHODS` (``knobs`` go to it) or a
    callable ``(model, inputs, targets) -> maps`` (``targets=None``: all classes,
    N x K x C' x H x W). The maps of all K classes are computed once per batch of
    ``batch_size`` images and read in every way.
    """
    name, maps_of = maps_function(method, **knobs)
    for way in ways:
        if way not in WAYS:
            raise ValueError(f"way must be one of {WAYS}, not {way!r}")
    param = next(model.parameters(), None)
    with torch.no_grad():
        k = model(inputs[:1].to(param.device) if param is not None else inputs[:1]).shape[1]
    labels = class_indices(labels, len(inputs), k, what="labels")
    correct_a, correct_b = [], {way: [] for way in ways}
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(inputs), batch_size):
            x, y = inputs[i:i + batch_size], labels[i:i + batch_size]
            with torch.no_grad():
                logits = model(x.to(param.device) if param is not None else x).cpu()
            correct_a.append(logits.argmax(1) == y)
            maps = maps_of(model, x, None).cpu()
            for way in ways:
                correct_b[way].append(class_sums(maps, x.cpu(), way).argmax(1) == y)
    finally:
        model.train(was_training)
    n, right = len(labels), torch.cat(correct_a)
    a = right.sum().item() / n
    rows = []
    for way in ways:
        right_b = torch.cat(correct_b[way])
        b = right_b.sum().item() / n
        rows.append(DeclineRate(name, way, a, b, (a - b) / a if a > 0 else math.nan, n,
                                correct_a=right, correct_b=right_b))
    return rows


# --------------------------------------------------------------------------- results on disk

def write_results(results: Sequence[DeclineRate], csv_path: str | Path,
                  extra: dict[tuple[str, str], dict] | None = None) -> Path:
    """Write ``results`` as a CSV (:meth:`DeclineRate.as_row`, plus the columns of
    ``extra[method, way]``) and their per-image results beside it, ``<stem>_per_image.npz``
    (one boolean array per method and A / way: ``"cam/a"``, ``"cam/iii"``), so intervals can
    be computed later (:func:`read_results`, :mod:`xai_helpers.ranking`)."""
    csv_path = Path(csv_path)
    rows = [{**r.as_row(), **(extra or {}).get((r.method, r.way), {})} for r in results]
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    arrays = {}
    for r in results:
        arrays[f"{r.method}/a"] = np.asarray(r.correct_a, dtype=bool)
        arrays[f"{r.method}/{r.way}"] = np.asarray(r.correct_b, dtype=bool)
    np.savez_compressed(csv_path.with_name(csv_path.stem + "_per_image.npz"), **arrays)
    return csv_path


def read_results(csv_path: str | Path) -> list[DeclineRate]:
    """The rows written by :func:`write_results`, with their per-image results when the
    ``_per_image.npz`` beside the CSV exists (else ``correct_a`` / ``correct_b`` are None)."""
    csv_path = Path(csv_path)
    if not csv_path.exists():
        raise FileNotFoundError(f"{csv_path} does not exist; it is written by "
                                f"benchmarks/bench_decline.py --record (full mode)")
    npz = csv_path.with_name(csv_path.stem + "_per_image.npz")
    arrays = dict(np.load(npz, allow_pickle=False)) if npz.exists() else {}
    out = []
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            method, way = row["method"], row["way"]
            a, b = arrays.get(f"{method}/a"), arrays.get(f"{method}/{way}")
            out.append(DeclineRate(method, way, float(row["accuracy_a"]),
                                   float(row["accuracy_b"]), float(row["decline_rate"]),
                                   int(row["n_images"]),
                                   correct_a=None if a is None else torch.from_numpy(a),
                                   correct_b=None if b is None else torch.from_numpy(b)))
    return out



def read_or_measure(csv_path: str | Path, plan: dict[str, nn.Module], images: torch.Tensor,
                    labels: torch.Tensor) -> tuple[list[DeclineRate], str]:
    """``(rows, source)``: the committed table at ``csv_path`` with its per-image answers
    (:func:`read_results`); where it is missing, the decline rates of ``plan`` (method ->
    model) measured here on ``images``, with a loud note that this is a small sample."""
    csv_path = Path(csv_path)
    if csv_path.exists():
        rows = read_results(csv_path)
        print(f"read {csv_path.name} ({len(rows)} rows) and its per-image answers, written by "
              f"benchmarks/bench_decline.py")
        return rows, f"the committed table, {rows[0].n_images:,} test images"
    rows = [r for name, model in plan.items()
            for r in decline_rate(model, name, images, labels)]
    print("=" * 100)
    print(f"NOTE: {csv_path.name} does not exist. The table below is a SMALL-SAMPLE table, "
          f"computed here on\nthe first {len(images):,} test images. It is NOT the "
          f"full-test-set result. Run `python benchmarks/bench_decline.py --record`\n(full "
          f"mode) to write the committed table, then run this notebook again.")
    print("=" * 100)
    return rows, f"a SMALL SAMPLE of {len(images):,} test images, NOT the full test set"
