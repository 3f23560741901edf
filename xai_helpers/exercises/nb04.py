"""Exercises of notebook 04 (paper 3's contribution ratios, CAV)."""

from __future__ import annotations

import torch

from .. import cav_analysis, data, models, two_animals
from . import Exercise

__all__ = ["q1", "q2", "q3"]


def _check_ratios(fn) -> str | None:
    if not callable(fn):
        return "give a function ratios(x, w) -> tensor of x's shape"
    x, w = torch.tensor([1.0, 2.0, -0.5, 1.0]), torch.tensor([0.5, -1.0, 2.0, 3.0])
    got = fn(x.clone(), w.clone())
    if got is None:
        return "your function returns None"
    p = (x * w).sum()
    got = torch.as_tensor(got, dtype=torch.float32)
    if got.shape == x.shape and torch.allclose(got, x * w / p):
        return None
    if got.shape == x.shape and torch.allclose(got, x * w):
        return "these are the contributions alpha_i (Eq. 1); the ratios divide them by p (Eq. 3)"
    if got.shape == x.shape and torch.allclose(got, (x * w).abs() / (x * w).abs().sum()):
        return "the ratios keep their sign: divide alpha_i by p itself, not by the sum of |alpha|"
    return f"for x = {x.tolist()}, w = {w.tolist()} they are {(x * w / p).tolist()}, summing to 1"


q1 = Exercise(
    "Exercise 1",
    "Write ratios(x, w): one Affine layer p = sum_i x_i w_i (the last input fixed at 1 holds the "
    "bias); return the contribution ratios beta_i (Eq. 1-3).",
    "alpha = x * w (Eq. 1), p = alpha.sum() (Eq. 2), beta = alpha / p (Eq. 3).",
    """
def ratios(x, w):
    alpha = x * w             # Eq. 1
    return alpha / alpha.sum()  # Eq. 2-3
answer = ratios
""",
    _check_ratios,
    wrong=lambda: (lambda x, w: x * w),
)


def _canvas0():
    model = models.load_pretrained("vgg_cifar10")
    cifar = data.load("cifar10", "test", n=1_000, verbose=False)
    pairs, _ = two_animals.choose_pairs(model, cifar.images, cifar.labels, 1)
    point = cav_analysis.pool_points(model)[3]
    ratio = two_animals.cat_map(model, pairs[0].image, point)
    region = two_animals.region_cells(pairs[0].dog_region, ratio.shape)
    return ratio, region


def _sum_at_4() -> float:
    return float(_canvas0()[0].sum())


def _check_sum(answer) -> str | None:
    truth, value = _sum_at_4(), float(answer)
    if abs(value - truth) < 1e-3:
        return None
    if abs(value - 1) < 1e-6:
        return ("1 is ratios plus bias shares; the features' ratios alone at (4) sum to something "
                "else (section 6's table)")
    return f"{value:.4f} is off: sum the cat's ratio map of canvas 0 at point (4) over all cells"


q2 = Exercise(
    "Exercise 2",
    "Canvas 0 of notebook 04 (the first pair that passes the rule, from the first 1,000 test "
    "images), class 'cat', point (4): what do the ratios of all 16 x 16 cells sum to?",
    "two_animals.choose_pairs(...) gives the canvases; two_animals.cat_map(model, image, point) "
    "the map; point (4) is cav_analysis.pool_points(model)[3].",
    """
from xai_helpers import cav_analysis, data, models, two_animals
model = models.load_pretrained("vgg_cifar10")
cifar = data.load("cifar10", "test", n=1_000, verbose=False)
pairs, _ = two_animals.choose_pairs(model, cifar.images, cifar.labels, 1)
point = cav_analysis.pool_points(model)[3]
answer = float(two_animals.cat_map(model, pairs[0].image, point).sum())
""",
    _check_sum,
    wrong=lambda: 1.0,
)


def _spots() -> tuple[int, int]:
    ratio, region = _canvas0()
    masks = two_animals.table1_masks(ratio, region, two_animals.THRESHOLD)
    return int(masks["(b) spots"].sum()), int(masks["(a) region minus spots"].sum())


def _check_spots(answer) -> str | None:
    spots, rest = _spots()
    if int(answer) == spots:
        return None
    if int(answer) == rest:
        return "that is mask (a), the dog without the spots; count the spots themselves"
    return ("count the dog's cells whose ratio is positive and at least 0.3 x the largest ratio "
            "inside the dog (two_animals.table1_masks)")


q3 = Exercise(
    "Exercise 3",
    "Same canvas and point: how many of the dog's 64 cells are spots for the cat (ratio > 0 and "
    ">= 0.3 x the largest ratio inside the dog), mask (b) of Table 1?",
    "two_animals.region_cells(pair.dog_region, ratio.shape) is the dog at the point; "
    "two_animals.table1_masks(ratio, region) splits it.",
    """
from xai_helpers import cav_analysis, data, models, two_animals
model = models.load_pretrained("vgg_cifar10")
cifar = data.load("cifar10", "test", n=1_000, verbose=False)
pair = two_animals.choose_pairs(model, cifar.images, cifar.labels, 1)[0][0]
point = cav_analysis.pool_points(model)[3]
ratio = two_animals.cat_map(model, pair.image, point)
region = two_animals.region_cells(pair.dog_region, ratio.shape)
answer = int(two_animals.table1_masks(ratio, region)["(b) spots"].sum())
""",
    _check_spots,
    wrong=lambda: _spots()[1],
)
