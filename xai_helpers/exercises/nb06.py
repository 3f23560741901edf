"""Exercises of notebook 06 (the methods compared; decline rate, deletion)."""

from __future__ import annotations

import torch

from .. import data, decline, models
from . import Exercise

__all__ = ["q1", "q2", "q3"]


def _check_rate(fn) -> str | None:
    if not callable(fn):
        return "give a function rate(correct_a, correct_b) -> float"
    a = torch.tensor([1, 1, 1, 1, 0, 1, 1, 0], dtype=torch.bool)  # A = 6/8
    b = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1], dtype=torch.bool)  # B = 5/8
    got = fn(a, b)
    if got is None:
        return "your function returns None"
    got = float(got)
    if abs(got - 1 / 6) < 1e-6:
        return None
    if abs(got + 1 / 6) < 1e-6:
        return "the sign is flipped: Eq. 13 is (A - B) / A, positive when the maps lose accuracy"
    if abs(got - 1 / 8) < 1e-6:
        return "that is A - B; Eq. 13 divides by A"
    return f"with A = 6/8 and B = 5/8 the decline rate is (A - B) / A = 1/6, you give {got:.4f}"


q1 = Exercise(
    "Exercise 1",
    "Write rate(correct_a, correct_b): the decline rate of Eq. 13 from two (N,) boolean "
    "tensors, the network right (A) and the argmax of the maps' class sums right (B).",
    "A and B are the means of the booleans (as floats); return (A - B) / A.",
    """
def rate(correct_a, correct_b):
    a, b = correct_a.float().mean(), correct_b.float().mean()
    return float((a - b) / a)
answer = rate
""",
    _check_rate,
    wrong=lambda: (lambda a, b: float(b.float().mean() - a.float().mean())),
)


def _cam_rates() -> dict[str, float]:
    cnn = models.load_pretrained("cnn_cifar10")
    cifar = data.load("cifar10", "test", n=200, verbose=False)
    return {r.way: r.decline_rate for r in decline.decline_rate(cnn, "cam", cifar.images,
                                                                cifar.labels)}


def _check_cam(answer) -> str | None:
    rates = _cam_rates()
    value = float(answer)
    if abs(value - rates["iv"]) < 1e-6:
        return None
    for way, r in rates.items():
        if abs(value - r) < 1e-6:
            return f"that is way ({way}); the question asks for way (iv), the map times the input"
    return (f"{value:.4f} is off: decline.decline_rate(cnn, 'cam', images, labels) gives the "
            f"rows of all four ways")


q2 = Exercise(
    "Exercise 2",
    "CAM on cnn_cifar10, the first 200 test images (all exact): what is its decline rate in way "
    "(iv), the weight map times the input? Predict first: higher or lower than in way (i)?",
    "decline.decline_rate(cnn, 'cam', images, labels) returns one DeclineRate per way; pick "
    "the one whose way is 'iv'.",
    """
from xai_helpers import data, decline, models
cnn = models.load_pretrained("cnn_cifar10")
cifar = data.load("cifar10", "test", n=200, verbose=False)
rows = decline.decline_rate(cnn, "cam", cifar.images, cifar.labels)
answer = next(r.decline_rate for r in rows if r.way == "iv")
""",
    _check_cam,
    wrong=lambda: _cam_rates()["i"] if _cam_rates()["i"] != _cam_rates()["iv"] else 1.0,
)

_FRACTIONS = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
_SCORES = torch.tensor([[0.9, 0.5, 0.3, 0.1, 0.1], [0.8, 0.8, 0.2, 0.0, 0.0]])


def _check_area(fn) -> str | None:
    if not callable(fn):
        return "give a function area(scores, fractions) -> mean area over the images"
    got = fn(_SCORES.clone(), _FRACTIONS.clone())
    if got is None:
        return "your function returns None"
    expected = float(torch.trapezoid(_SCORES, _FRACTIONS, dim=1).mean())
    got = float(got)
    if abs(got - expected) < 1e-6:
        return None
    if abs(got - float(_SCORES.mean())) < 1e-6:
        return ("that is the mean score (rectangles); the curves are areas by the trapezoid "
                "rule between the fractions")
    return f"expected {expected:.4f}: the trapezoid rule per image, then the mean over images"


q3 = Exercise(
    "Exercise 3",
    "Write area(scores, fractions): the mean over images (rows of scores, N x steps+1) of the "
    "area under each deletion curve, by the trapezoid rule over the fractions deleted.",
    "torch.trapezoid(scores, fractions, dim=1) gives one area per image.",
    """
import torch
def area(scores, fractions):
    return float(torch.trapezoid(scores, fractions, dim=1).mean())
answer = area
""",
    _check_area,
    wrong=lambda: (lambda scores, fractions: float(scores.mean())),
)
