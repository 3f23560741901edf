"""Exercises of notebook 05 (paper 4's magnitude and connected-region pruning)."""

from __future__ import annotations

import torch

from .. import models, pruning
from . import Exercise

__all__ = ["q1", "q2", "q3"]


def _check_magnitude(fn) -> str | None:
    if not callable(fn):
        return "give a function keep_mask(weight, rate) -> bool mask of weight's shape"
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 20, generator=g) * torch.linspace(0.2, 3, 6)[:, None]  # rows differ
    got = fn(weight, 0.5)
    if got is None:
        return "your function returns None: return the mask (True = kept)"
    expected = pruning.magnitude_mask(weight, 0.5)
    if not isinstance(got, torch.Tensor) or got.shape != weight.shape:
        return f"the mask must have the weight's shape {tuple(weight.shape)}"
    got = got.bool()
    if torch.equal(got, expected):
        return None
    if torch.equal(got, ~expected):
        return "True must mean kept: you marked the deleted weights"
    if int(got.sum()) == int(expected.sum()):
        return ("the right number of weights is kept, but not the right ones: step 1 uses one "
                "threshold over the whole layer, not one per neuron (row)")
    return (f"keep {int(expected.sum())} of {weight.numel()} weights (those of largest |w| over "
            f"the whole layer); you keep {int(got.sum())}")


def _per_row(weight, rate):
    k = round(rate * weight.shape[1])
    threshold = weight.abs().kthvalue(k, dim=1, keepdim=True).values
    return weight.abs() > threshold


q1 = Exercise(
    "Exercise 1",
    "Write keep_mask(weight, rate): step 1 of paper 4, a bool mask (True = kept) that deletes "
    "the round(rate * weight.numel()) weights of smallest |w| over the whole layer.",
    "Sort weight.abs().flatten(); the weights before position k are deleted (ties: the first "
    "ones in the flattened order).",
    """
import torch
def keep_mask(weight, rate):
    k = round(rate * weight.numel())
    order = torch.sort(weight.abs().flatten(), stable=True).indices
    keep = torch.ones(weight.numel(), dtype=torch.bool)
    keep[order[:k]] = False
    return keep.view_as(weight)
answer = keep_mask
""",
    _check_magnitude,
    wrong=lambda: _per_row,
)


def _zero_share() -> float:
    return float((models.load_pretrained("mlp_mnist_pruned").fc1.weight == 0).float().mean())


def _check_share(answer) -> str | None:
    truth, value = _zero_share(), float(answer)
    if value > 1:
        return "give a share between 0 and 1, not a count or a percentage"
    if abs(value - truth) < 1e-4:
        return None
    if abs(value - (1 - truth)) < 1e-4:
        return "that is the share of weights kept; the question asks for the pruned (zero) ones"
    return f"{value:.4f} is off: count the exact zeros of fc1.weight and divide by its size"


q2 = Exercise(
    "Exercise 2",
    "What share of the committed mlp_mnist_pruned's first-layer weights (fc1) is exactly 0?",
    "models.load_pretrained('mlp_mnist_pruned').fc1.weight; (w == 0).float().mean().",
    """
from xai_helpers import models
w = models.load_pretrained("mlp_mnist_pruned").fc1.weight
answer = float((w == 0).float().mean())
""",
    _check_share,
    wrong=lambda: 1 - _zero_share(),
)


def _regions(connectivity: int) -> int:
    w = models.load_pretrained("mlp_mnist_pruned").fc1.weight.detach()
    return len(pruning.find_regions(w, w != 0, connectivity=connectivity).size)


def _check_regions(answer) -> str | None:
    truth, eight = _regions(4), _regions(8)
    if int(answer) == truth:
        return None
    if int(answer) == eight:
        return "that counts diagonal neighbours as connected (8-connectivity); the course uses 4"
    return (f"{int(answer)} is off: label each neuron's 28 x 28 image of kept weights (edge "
            f"neighbours only) and add up the regions of all 100 neurons")


q3 = Exercise(
    "Exercise 3",
    "How many connected regions (4-connectivity: edge neighbours) do the kept first-layer "
    "weights of mlp_mnist_pruned form, over all its 100 neurons (each neuron's 28 x 28 image "
    "on its own)?",
    "pruning.find_regions(w, w != 0) labels them all (one label per region); or use "
    "scipy.ndimage.label neuron by neuron and add up the counts.",
    """
from scipy import ndimage
from xai_helpers import models
w = models.load_pretrained("mlp_mnist_pruned").fc1.weight.detach()
answer = sum(ndimage.label((row != 0).view(28, 28).numpy())[1] for row in w)  # edge neighbours
""",
    _check_regions,
    wrong=lambda: _regions(8),
)
