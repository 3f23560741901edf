"""Reading and measuring GCM's maps (paper 2, sections 4.2-4.5 and 5): the figures of the
paper (Fig. 6-9) and the measurements notebook 03 makes where the paper only looked.

Maps are handled as the model returns them (``GCM.maps``): CWM N x K x H x W, CCM
N x K x D x H x W. "Mass" of a map is the sum of its values over channels and pixels; by Eq. 4
the score of class j is the CCM's mass divided by R C D, so shares of mass are shares of score.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import models, scoring
from .plots import frame, no_ticks, show_image, signed_heatmap, to_numpy_image

__all__ = ["parts", "ccm_figure", "ccm_pairs_figure", "difference_figure", "class_maps",
           "mask_shares", "nontarget_positive_share", "side_by_side", "half_shares",
           "seconds_per_image", "over_batches", "bounding_boxes",
           "lighter_than_background", "accuracy_table"]


def parts(ccm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positive, negative)`` parts of a map, both >= 0: ``ccm = positive - negative``."""
    return ccm.clamp(min=0), (-ccm).clamp(min=0)


def _rgb(part: torch.Tensor, scale: float) -> np.ndarray:
    """A CCM part (D x H x W, >= 0) as an image: the pixels lit by the map, ``scale`` -> white."""
    return to_numpy_image(part / scale)


@torch.no_grad()
def class_maps(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``model.maps(images)`` in eval mode, without gradients: ``(cwm, ccm, scores)``."""
    model.eval()
    return model.maps(images)


def ccm_figure(image: torch.Tensor, ccm: torch.Tensor, scores: torch.Tensor,
               classes: Sequence[str], label: int | None = None, *,
               show: str = "both", numbers: bool = True, title: str | None = None) -> Figure:
    """The paper's Fig. 7 for one image: the original, then each class's CCM, positive part in
    the first row and negative part in the row below (``show``: "positive", "negative" or
    "both"), the class score under each map (``numbers=False`` hides them) and the true class
    (``label``) framed red.

    One brightness scale for the whole figure (the largest value of any part): a brighter map
    is a larger contribution, so the scores can be guessed by eye ("visual mental arithmetic").
    """
    if show not in ("positive", "negative", "both"):
        raise ValueError(f"show must be 'positive', 'negative' or 'both', not {show!r}")
    pos, neg = parts(ccm)
    rows = {"positive": [("positive", pos)], "negative": [("negative", neg)],
            "both": [("positive", pos), ("negative", neg)]}[show]
    scale = max(float(p.max()) for _, p in rows) or 1.0
    k = len(classes)
    fig, axes = plt.subplots(len(rows), k + 1, figsize=(1.15 * (k + 1), 1.45 * len(rows) + 0.5),
                             squeeze=False)
    for r, (name, part) in enumerate(rows):
        ax = axes[r, 0]
        if r == 0:
            show_image(ax, image, "original")
        else:
            ax.axis("off")
        for j in range(k):
            ax = axes[r, j + 1]
            ax.imshow(_rgb(part[j], scale), cmap="gray" if part.shape[1] == 1 else None,
                      vmin=0, vmax=1)
            no_ticks(ax)
            if r == 0:
                ax.set_title(classes[j], fontsize=8)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
            if numbers and r == len(rows) - 1:
                ax.set_xlabel(f"{float(scores[j]):+.3f}", fontsize=8)
            if label is not None and j == label:
                frame(ax, "red", 3)
    fig.suptitle(title or ("CCM per class (rows: " + " / ".join(n for n, _ in rows) + " part)"
                           + ("; number = class score = mean of the CCM" if numbers else "")))
    fig.tight_layout()
    return fig


def ccm_pairs_figure(images: torch.Tensor, ccm_true: torch.Tensor, titles: Sequence[str], *,
                     ncols: int = 4, title: str = "") -> Figure:
    """The paper's Fig. 9 (and Fig. 6): pairs of (original, its true class's positive CCM),
    ``ncols`` pairs per row; each CCM scaled to its own maximum."""
    n = len(images)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(1.2 * 2 * ncols, 1.35 * nrows + 0.4),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        a, b = axes[i // ncols, 2 * (i % ncols)], axes[i // ncols, 2 * (i % ncols) + 1]
        a.axis("on")
        b.axis("on")
        show_image(a, images[i], titles[i])
        pos = ccm_true[i].clamp(min=0)
        b.imshow(_rgb(pos, float(pos.max()) or 1.0), cmap="gray" if pos.shape[0] == 1 else None,
                 vmin=0, vmax=1)
        no_ticks(b)
        b.set_title("positive CCM", fontsize=8)
    fig.suptitle(title or "originals and the positive CCM of their true class")
    fig.tight_layout()
    return fig


def difference_figure(image: torch.Tensor, ccm: torch.Tensor, scores: torch.Tensor,
                      classes: Sequence[str], a: int, b: int) -> Figure:
    """Where two classes differ: the CCMs of classes ``a`` and ``b`` (mean over channels,
    signed) and ``CCM_a - CCM_b``, whose mean is the score margin ``score_a - score_b`` (Eq. 4)."""
    maps = ccm[[a, b]].mean(1)  # 2 x H x W; the mean of each is its class score
    diff = maps[0] - maps[1]
    m = float(maps.abs().max())
    fig, axes = plt.subplots(1, 4, figsize=(11, 2.8))
    show_image(axes[0], image, "original")
    for ax, j, mp in ((axes[1], a, maps[0]), (axes[2], b, maps[1])):
        signed_heatmap(ax, mp, f"CCM {classes[j]} (mean {float(mp.mean()):+.3f})",
                       cbar_label="contribution", vmax=m)
    signed_heatmap(axes[3], diff, f"{classes[a]} - {classes[b]} (mean {float(diff.mean()):+.3f})",
                   cbar_label=f"favours {classes[a]} (+) / {classes[b]} (-)")
    fig.suptitle(f"Where '{classes[a]}' and '{classes[b]}' differ: the score margin "
                 f"{float(scores[a] - scores[b]):+.3f} is the mean of the difference map")
    fig.tight_layout()
    return fig


def mask_shares(ccm_true: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Share of the positive mass of each image's true-class CCM (N x D x H x W) that falls in
    each region (``masks``: name -> bool N x H x W; the rest is "elsewhere"), against the share
    of the image's area, both averaged over images."""
    pos = ccm_true.clamp(min=0).sum(1)  # N x H x W
    total = pos.sum((1, 2)).clamp(min=1e-12)
    covered = torch.zeros_like(pos, dtype=torch.bool)
    out = {}
    for name, mask in masks.items():
        out[name] = {"mass": float(((pos * mask).sum((1, 2)) / total).mean()),
                     "area": float(mask.float().mean())}
        covered |= mask
    out["elsewhere"] = {"mass": float(((pos * ~covered).sum((1, 2)) / total).mean()),
                        "area": float((~covered).float().mean())}
    return out


def bounding_boxes(mask: torch.Tensor) -> torch.Tensor:
    """Each image's bounding box of ``mask`` (bool N x H x W) filled in: the centre digit's
    box holds its strokes *and* the background between them, where a dark digit's evidence
    lies when the CCM (weight x pixel) cannot be large on its dark strokes."""
    rows, cols = mask.any(2), mask.any(1)  # N x H, N x W
    return _spans(rows).unsqueeze(2) & _spans(cols).unsqueeze(1)


def _spans(hits: torch.Tensor) -> torch.Tensor:
    """N x L bool -> N x L bool, True from each row's first True to its last."""
    idx = torch.arange(hits.shape[1])
    first = torch.where(hits, idx, hits.shape[1]).min(1, keepdim=True).values
    last = torch.where(hits, idx, -1).max(1, keepdim=True).values
    return (idx >= first) & (idx <= last)


def lighter_than_background(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image (N x C x H x W), whether the pixels in ``mask`` (N x H x W) are on average
    brighter than the rest: a light digit on a dark ground, or the reverse."""
    grey, m = images.mean(1), mask.float()
    inside = (grey * m).sum((1, 2)) / m.sum((1, 2)).clamp(min=1)
    outside = (grey * (1 - m)).sum((1, 2)) / (1 - m).sum((1, 2)).clamp(min=1)
    return inside > outside


def nontarget_positive_share(ccm: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image, the share of all positive CCM mass that lies in the *other* classes' maps:
    ``sum_{j != y} sum relu(CCM_j) / sum_j sum relu(CCM_j)``. 0 = only the true class lights
    up; (K-1)/K = every class equally. Measures section 5(2)'s "cleaner non-target maps"."""
    mass = ccm.clamp(min=0).flatten(2).sum(2)  # N x K
    own = mass.gather(1, labels.view(-1, 1)).squeeze(1)
    return 1 - own / mass.sum(1).clamp(min=1e-12)


def side_by_side(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Two images (C x H x W) shrunk to half size and set side by side, vertically centred, on
    a grey background: one 32 x 32 image with two objects."""
    c, h, w = left.shape
    small = torch.nn.functional.interpolate(torch.stack([left, right]), size=(h // 2, w // 2),
                                            mode="bilinear", antialias=True, align_corners=False)
    out = torch.full((c, h, w), 0.5)
    top = h // 4
    out[:, top:top + h // 2, :w // 2] = small[0]
    out[:, top:top + h // 2, w // 2:] = small[1]
    return out


def half_shares(ccm: torch.Tensor) -> torch.Tensor:
    """Share of each map's positive mass in its left half (N x K): 1 = all on the left."""
    pos = ccm.clamp(min=0).sum(2)  # N x K x H x W
    w = pos.shape[-1]
    return pos[..., : w // 2].sum((-1, -2)) / pos.sum((-1, -2)).clamp(min=1e-12)


@torch.no_grad()
def seconds_per_image(model: nn.Module, images: torch.Tensor, *, batch_size: int = 100,
                      repeats: int = 3) -> float:
    """Inference time per image (best of ``repeats`` passes over ``images``, batched, eval
    mode, no gradients) on the CPU threads torch is set to use."""
    model.eval()
    model(images[:batch_size])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        for i in range(0, len(images), batch_size):
            model(images[i:i + batch_size])
        best = min(best, time.perf_counter() - tick)
    return best / len(images)


@torch.no_grad()
def over_batches(model: nn.Module, images: torch.Tensor, fn, *, batch_size: int = 500,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """``fn(cwm, ccm, scores, labels)`` on batches of ``images`` (labels sliced alike),
    concatenated: statistics of the maps of a whole test set without holding all its CCMs
    (10,000 CIFAR-10 CCMs would take 1.2 GB)."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        cwm, ccm, scores = model.maps(images[i:i + batch_size])
        out.append(fn(cwm, ccm, scores, None if labels is None else labels[i:i + batch_size]))
    return torch.cat(out)


def accuracy_table(nets: dict[str, nn.Module], test, timing: torch.Tensor) -> dict[str, dict]:
    """Our Table 7, measured on the models in hand: per model its parameters, the accuracy on
    ``test`` (an ``ImageData``; the offline CIFAR-10 is 90% JPEG-degraded) and on its exact
    images with the 95% interval and recompressed as JPEG-75 (:func:`scoring.jpeg_report`), and
    the inference time per image on ``timing`` (batches of 100, best of 7 passes)."""
    table = {}
    for name, model in nets.items():
        table[name] = {"parameters": models.count_parameters(model),
                       "accuracy": scoring.evaluate(model, test),
                       **scoring.jpeg_report(model, test),
                       "ms_per_image": 1e3 * seconds_per_image(model, timing, repeats=7)}
    return table
