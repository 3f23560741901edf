"""Paper 3's experiment offline: a dog above a cat in one image, CAV for the cat, and Table 1's
feature invalidation on many such images (section 5, Fig. 8, Table 1).

Kakishita and Hattori (seed 003) explained 'tiger cat' in a 224 x 224 photo of a dog above a
cat with VGG-16 on ImageNet. Offline the course has neither, so it builds the same situation
from real CIFAR-10 test images and its fully convolutional ``vgg_cifar10`` (global average
pooling before the classifier, so any image size works):

* a **canvas** (:func:`canvas`): a 64 x 64 plain background (CIFAR-10's mean colour) with a
  dog tile (32 x 32, at the training scale) centred in the top half and a cat tile centred in
  the bottom half. At 64 x 64 the five pooling points of ``vgg_cifar10`` are real maps: (1)
  2 x 2 (Grad-CAM's resolution), (2) 4 x 4, (3) 8 x 8, (4) 16 x 16, (5) 32 x 32.
* a stated **selection rule** (:func:`choose_pairs`): the i-th dog with the i-th cat of the
  test set, kept when the model recognises each tile alone and the canvas's top two classes
  are dog and cat; no looking at the maps.
* **Table 1's masks** at a point (:func:`table1_masks`): (b) the *spots*, cells of the dog
  region whose ratio for 'cat' is positive and at least ``threshold`` times the largest one in
  the dog region; (a) the dog region without the spots.
* **controls** of the same areas (:func:`random_masks`: random cells of the dog region;
  :func:`gradcam_masks`: the cells Grad-CAM at the deepest point ranks highest for 'cat').
* the **readout** (:func:`scores_after`): the pre-softmax scores with a mask's features zeroed
  (:func:`xai_helpers.cav_analysis.invalidate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import cav
from .cav_analysis import grad_cam, invalidate, point_maps
from .checks import check_images
from .gcm import CIFAR10_MEAN

__all__ = ["CAT", "DOG", "TILE", "SIZE", "THRESHOLD", "canvas", "Pair", "choose_pairs",
           "region_cells", "table1_masks", "random_masks", "gradcam_masks", "scores_after",
           "cat_map", "MASKS", "PAPER", "Table1", "run_table1"]

CAT, DOG = 3, 5  # CIFAR-10's class indices
TILE, SIZE = 32, 64  # a tile at the training scale; the canvas side
THRESHOLD = 0.3  # a spot: ratio >= 0.3 x the largest ratio in the dog region (our choice)


def canvas(dog: torch.Tensor, cat: torch.Tensor, size: int = SIZE,
           background: Sequence[float] = CIFAR10_MEAN) -> tuple[torch.Tensor, torch.Tensor,
                                                                 torch.Tensor]:
    """``(image 3 x size x size, dog region, cat region)``: the dog tile centred in the top
    half, the cat tile in the bottom half, on a plain ``background``; regions size x size bool."""
    dog, cat = (check_images(t[None] if t.ndim == 3 else t, 3)[0] for t in (dog, cat))
    if dog.shape != cat.shape:
        raise ValueError(f"the two tiles differ in shape: {tuple(dog.shape)} and "
                         f"{tuple(cat.shape)}")
    h, w = dog.shape[-2:]
    if size < 2 * h or size < w:
        raise ValueError(f"a canvas of side {size} cannot hold two {h} x {w} tiles one above "
                         f"the other (need size >= {max(2 * h, w)})")
    image = torch.tensor(background, dtype=dog.dtype).view(3, 1, 1).repeat(1, size, size)
    left, top = (size - w) // 2, (size // 2 - h) // 2
    regions = []
    for tile, row in ((dog, top), (cat, size // 2 + top)):
        image[:, row:row + h, left:left + w] = tile
        region = torch.zeros(size, size, dtype=torch.bool)
        region[row:row + h, left:left + w] = True
        regions.append(region)
    return image, regions[0], regions[1]


@dataclass(frozen=True)
class Pair:
    """One test canvas: which test images, and how the model saw them."""

    dog_index: int
    cat_index: int
    image: torch.Tensor  # 3 x SIZE x SIZE
    dog_region: torch.Tensor  # SIZE x SIZE bool
    cat_region: torch.Tensor


def choose_pairs(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, n: int, *,
                 batch_size: int = 200) -> tuple[list[Pair], int]:
    """The first ``n`` canvases that pass the rule (module docstring) and the number of
    pairs tried: dogs and cats in the order of ``images``, the i-th dog with the i-th cat."""
    labels = torch.as_tensor(labels)
    dogs = torch.nonzero(labels == DOG).flatten()
    cats = torch.nonzero(labels == CAT).flatten()
    pairs, tried = [], 0
    for start in range(0, min(len(dogs), len(cats)), batch_size):
        d, c = dogs[start:start + batch_size], cats[start:start + batch_size]
        d, c = d[:len(c)], c[:len(d)]
        built = [canvas(images[i], images[j]) for i, j in zip(d, c, strict=True)]
        with torch.no_grad():
            alone_dog = model(images[d]).argmax(1) == DOG
            alone_cat = model(images[c]).argmax(1) == CAT
            top2 = model(torch.stack([b[0] for b in built])).topk(2, dim=1).indices
        both = ((top2 == DOG).any(1) & (top2 == CAT).any(1))
        for k in range(len(d)):
            tried += 1
            if alone_dog[k] and alone_cat[k] and both[k]:
                pairs.append(Pair(int(d[k]), int(c[k]), *built[k]))
                if len(pairs) == n:
                    return pairs, tried
    return pairs, tried


def region_cells(region: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The pixel ``region`` (H x W bool) at a point's resolution h x w: a cell belongs to it
    when at least half of its pixels do."""
    pooled = F.adaptive_avg_pool2d(region[None, None].float(), tuple(shape))[0, 0]
    return pooled >= 0.5


def table1_masks(ratio_map: torch.Tensor, region: torch.Tensor,
                 threshold: float = THRESHOLD) -> dict[str, torch.Tensor]:
    """Paper 3's two masks (Fig. 8) at one point, h x w bool: ``"(b) spots"``, the cells of
    ``region`` (h x w bool) whose ratio is positive and at least ``threshold`` times the
    largest ratio inside the region, and ``"(a) region minus spots"``, the rest of the region.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a fraction of the largest ratio, 0..1; got {threshold}")
    if ratio_map.shape != region.shape:
        raise ValueError(f"ratio map {tuple(ratio_map.shape)} and region "
                         f"{tuple(region.shape)} differ in shape")
    inside = ratio_map.masked_fill(~region, -torch.inf)
    top = inside.max()
    spots = region & (ratio_map > 0) & (ratio_map >= threshold * top) if top > 0 else \
        torch.zeros_like(region)
    return {"(a) region minus spots": region & ~spots, "(b) spots": spots}


def random_masks(region: torch.Tensor, count: int, draws: int,
                 generator: torch.Generator) -> torch.Tensor:
    """``draws`` x h x w: masks of ``count`` cells drawn at random inside ``region``."""
    cells = torch.nonzero(region.flatten()).flatten()
    if not 0 <= count <= len(cells):
        raise ValueError(f"count must be between 0 and the region's {len(cells)} cells, got "
                         f"{count}")
    out = torch.zeros(draws, region.numel(), dtype=torch.bool)
    for k in range(draws):
        out[k, cells[torch.randperm(len(cells), generator=generator)[:count]]] = True
    return out.view(draws, *region.shape)


def gradcam_masks(model: nn.Module, image: torch.Tensor, deepest: str, target: int,
                  region: torch.Tensor, count: int) -> dict[str, torch.Tensor]:
    """The Table 1 masks chosen by Grad-CAM at the ``deepest`` point instead of CAV: its map
    enlarged (nearest) to ``region``'s resolution, the ``count`` highest cells of the region
    as "(b)", the rest of the region as "(a)" (ties broken by position)."""
    cam = grad_cam(model, image[None], deepest, target)
    cam = F.interpolate(cam[None, None], size=tuple(region.shape), mode="nearest")[0, 0]
    order = cam.masked_fill(~region, -torch.inf).flatten().argsort(descending=True, stable=True)
    spots = torch.zeros(region.numel(), dtype=torch.bool)
    spots[order[:count]] = True
    spots = spots.view(region.shape) & region
    return {"(a) region minus spots": region & ~spots, "(b) spots": spots}


def scores_after(model: nn.Module, image: torch.Tensor, point: str,
                 masks: torch.Tensor) -> torch.Tensor:
    """M x K pre-softmax scores of ``image`` (C x H x W) with the features of ``point`` zeroed
    under each of ``masks`` (M x h x w), one forward pass for all of them."""
    with torch.no_grad(), invalidate(model, point, masks):
        return model(image[None].expand(len(masks), -1, -1, -1))


def cat_map(model: nn.Module, image: torch.Tensor, point: str,
            target: int = CAT) -> torch.Tensor:
    """h x w: CAV's ratios for ``target`` at ``point``, summed over channels."""
    return point_maps(model, image[None], target, [point])[point]


MASKS = ("(a) region minus spots", "(b) spots")
PAPER = {"(a) region minus spots": (11.07, 13.81), "(b) spots": (11.07, 8.34)}  # Table 1


@dataclass(frozen=True)
class Table1:
    """Table 1's invalidation on N canvases at one point: 'cat' scores before and after."""

    point: str
    threshold: float
    before: torch.Tensor  # (N,) the cat's pre-softmax score, nothing zeroed
    after: dict[str, torch.Tensor]  # "CAV (a)", "CAV (b)", "Grad-CAM (a)", ... -> (N,)
    spots: torch.Tensor  # (N,) cells in mask (b)
    region: int  # cells of the dog region at the point

    def change(self, key: str) -> torch.Tensor:
        return self.after[key] - self.before

    def paper_direction(self, key: str) -> torch.Tensor:
        """(N,) bool: the score moved the way the paper's did for this mask ((a) up, (b)
        down)."""
        sign = 1 if "(a)" in key else -1
        return sign * self.change(key) > 0


def run_table1(model: nn.Module, pairs: Sequence[Pair], point: str, deepest: str, *,
               threshold: float = THRESHOLD, draws: int = 10, seed: int = 0) -> Table1:
    """Table 1's two masks on every canvas of ``pairs`` at ``point``, chosen by CAV (the
    paper), by Grad-CAM at ``deepest`` (same areas) and at random inside the dog region (same
    areas, the mean over ``draws``); the cat's score after each (:class:`Table1`)."""
    images = torch.stack([p.image for p in pairs])
    ratios = cav.channel_map(cav.explain(model, images, CAT, [point])[point])  # N x h x w
    generator = torch.Generator().manual_seed(seed)
    keys = [f"{who} {m[:3]}" for who in ("CAV", "Grad-CAM", "random") for m in MASKS]
    after = {k: torch.zeros(len(pairs)) for k in keys}
    before, spots = torch.zeros(len(pairs)), torch.zeros(len(pairs), dtype=torch.long)
    region_size = 0
    for i, pair in enumerate(pairs):
        region = region_cells(pair.dog_region, ratios.shape[-2:])
        region_size = int(region.sum())
        cav_masks = table1_masks(ratios[i], region, threshold)
        k = int(cav_masks["(b) spots"].sum())
        gc = gradcam_masks(model, pair.image, deepest, CAT, region, k)
        fixed = torch.stack([torch.zeros_like(region), *cav_masks.values(), *gc.values()])
        scores = scores_after(model, pair.image, point, fixed)[:, CAT]
        before[i], spots[i] = scores[0], k
        for j, key in enumerate(keys[:4]):
            after[key][i] = scores[1 + j]
        for m, count in ((MASKS[0], region_size - k), (MASKS[1], k)):
            masks = random_masks(region, count, draws, generator)
            after[f"random {m[:3]}"][i] = scores_after(model, pair.image, point,
                                                       masks)[:, CAT].mean()
    return Table1(point, threshold, before, after, spots, region_size)
