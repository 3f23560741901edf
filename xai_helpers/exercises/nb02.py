"""Exercises of notebook 02 (paper 1's greedy occlusion)."""

from __future__ import annotations

import torch

from .. import data, models, occlusion
from . import Exercise

__all__ = ["q1", "q2", "q3"]


def _check_delete(fn) -> str | None:
    if not callable(fn):
        return "give a function delete_region(images, region, grid, fill) -> images"
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    got = fn(images.clone(), 6, 4, 0.0)  # region 6 of a 4 x 4 grid: row 1, column 2
    if got is None:
        return "your function returns None: return the images with the region deleted"
    expected = occlusion.delete_regions(images, [6], 4, 0.0)
    if not isinstance(got, torch.Tensor) or got.shape != images.shape:
        return f"return images of the input's shape {tuple(images.shape)}"
    if torch.equal(got, expected):
        return None
    if torch.equal(got, occlusion.delete_regions(images, [9], 4, 0.0)):
        return "rows and columns are swapped: region a * grid + b is row a, column b"
    changed = int((got != images).flatten(1).any(0).sum())
    return (f"{changed} pixel positions changed; region 6 of a 4 x 4 grid on 8 x 8 images is the "
            f"2 x 2 block at rows 2-3, columns 4-5")


def _column_major(images, region, grid, fill):
    return occlusion.delete_regions(images, [(region % grid) * grid + region // grid], grid, fill)


q1 = Exercise(
    "Exercise 1",
    "Write delete_region(images, region, grid, fill): set region number `region` (row-major, "
    "a * grid + b) of every image to `fill`; regions are H/grid x W/grid pixels.",
    "a, b = divmod(region, grid); the block is rows a*h:(a+1)*h, columns b*w:(b+1)*w.",
    """
def delete_region(images, region, grid, fill):
    h, w = images.shape[-2] // grid, images.shape[-1] // grid
    a, b = divmod(region, grid)
    out = images.clone()
    out[..., a * h:(a + 1) * h, b * w:(b + 1) * w] = fill
    return out
answer = delete_region
""",
    _check_delete,
    wrong=lambda: _column_major,
)

_COUNTS = torch.tensor([[3, 0, 1, 0], [0, 2, 0, 4], [1, 0, 0, 2]])  # 3 steps, 4 regions


def _check_importance(fn) -> str | None:
    if not callable(fn):
        return "give a function importance(counts) -> (regions,) tensor"
    got = fn(_COUNTS.clone())
    if got is None:
        return "your function returns None"
    expected = (_COUNTS / torch.arange(1, 4).view(3, 1)).sum(0)
    got = torch.as_tensor(got, dtype=torch.float64).flatten()
    if got.shape == expected.shape and torch.allclose(got, expected.double()):
        return None
    if got.shape == expected.shape and torch.allclose(got, _COUNTS.sum(0).double()):
        return "this is the plain sum: step 6 divides step t's counts by t"
    return (f"for counts {_COUNTS.tolist()} expected {expected.tolist()} (step t's counts over "
            f"t, summed over the steps)")


q2 = Exercise(
    "Exercise 2",
    "Write importance(counts): step 6 of paper 1, from counts (steps x regions: images "
    "misclassified at step t by each candidate) to one importance per region.",
    "Divide row t - 1 by t (torch.arange(1, steps + 1)), then sum over the steps.",
    """
import torch
def importance(counts):
    steps = counts.shape[0]
    return (counts / torch.arange(1, steps + 1).view(steps, 1)).sum(0)
answer = importance
""",
    _check_importance,
    wrong=lambda: (lambda counts: counts.sum(0)),
)


def _first_regions() -> tuple[int, int]:
    net = models.load_pretrained("tiny_cnn_mnist")
    mnist = data.load("mnist", "test", n=1_000, verbose=False)
    sevens = mnist.images[mnist.labels == 7][:20]
    result = occlusion.greedy_occlusion(net, sevens, 7, grid=7)
    second = int(result.counts[0].argsort(descending=True, stable=True)[1])
    return result.order[0], second


def _check_first(answer) -> str | None:
    first, second = _first_regions()
    if int(answer) == first:
        return None
    if int(answer) == second:
        return "that region misclassifies the second most images at step 1; take the largest"
    return ("run greedy_occlusion on the first 20 sevens with grid=7 and read the first entry of "
            "its order")


q3 = Exercise(
    "Exercise 3",
    "tiny_cnn_mnist, the first 20 sevens among the first 1,000 test digits, a 7 x 7 grid of 4 x 4 "
    "regions: which region (row-major index) does greedy occlusion delete first? Guess from "
    "Fig. 6 before you run it.",
    "occlusion.greedy_occlusion(net, sevens, 7, grid=7).order[0]; divmod(region, 7) gives its "
    "row and column.",
    """
from xai_helpers import data, models, occlusion
net = models.load_pretrained("tiny_cnn_mnist")
mnist = data.load("mnist", "test", n=1_000, verbose=False)
sevens = mnist.images[mnist.labels == 7][:20]
answer = occlusion.greedy_occlusion(net, sevens, 7, grid=7).order[0]
""",
    _check_first,
    wrong=lambda: _first_regions()[1],
)
