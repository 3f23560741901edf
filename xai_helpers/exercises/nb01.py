"""Exercises of notebook 01 (paper 1's filter contribution on tiny_cnn_mnist)."""

from __future__ import annotations

import torch

from .. import contribution, data, models
from . import Exercise

__all__ = ["q1", "q2", "q3"]


def _contributions_reference(maps, weight, cls):
    k = maps.shape[1]
    return torch.einsum("khw,nkhw->nk", weight[cls].view(k, *maps.shape[2:]), maps)


def _check_contributions(fn) -> str | None:
    if not callable(fn):
        return "give a function contributions(maps, weight, cls) -> N x K"
    g = torch.Generator().manual_seed(0)
    maps, weight = torch.rand(4, 9, 3, 3, generator=g), torch.randn(10, 81, generator=g)
    got = fn(maps, weight, 2)
    if got is None:
        return "your function returns None: return the N x K contributions"
    expected = _contributions_reference(maps, weight, 2)
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return (f"expected an N x K = {tuple(expected.shape)} tensor, got "
                f"{getattr(got, 'shape', got)}")
    if torch.allclose(got, expected, atol=1e-5):
        return None
    if torch.allclose(got.sum(1), expected.sum(1), atol=1e-4):
        return ("the rows sum to the right logits (minus the bias) but the split over the maps "
                "is off: each map k must meet the weights of its own h x w block, in the order "
                "the Flatten layer lays them out (map by map)")
    return ("sum over each map's h x w cells of (map value x the Affine weight of that cell) for "
            "class cls; yours differs (Eq. of section 3)")


q1 = Exercise(
    "Exercise 1",
    "Write contributions(maps, weight, cls): maps N x K x h x w feed the Affine layer (weight "
    "classes x K*h*w, flattened map by map); return the N x K contributions to class cls.",
    "weight[cls].view(K, h, w) lines the weights up with the maps; multiply and sum over h, w.",
    """
import torch
def contributions(maps, weight, cls):
    k = maps.shape[1]
    return torch.einsum("khw,nkhw->nk", weight[cls].view(k, *maps.shape[2:]), maps)
answer = contributions
""",
    _check_contributions,
    wrong=lambda: (lambda maps, weight, cls: maps.sum((2, 3)) * weight[cls].view(
        maps.shape[1], -1).sum(1)),
)


def _first_map_of(digit: int) -> tuple[int, int]:
    net = models.load_pretrained("tiny_cnn_mnist")
    mnist = data.load("mnist", "test", n=1_000, verbose=False)
    result = contribution.filter_contribution(net, mnist.images, mnist.labels)
    counts = torch.bincount(result.contributions[mnist.labels == digit].argmax(1), minlength=9)
    order = counts.argsort(descending=True, stable=True)
    return int(order[0]), int(order[1])


def _check_first_map(answer) -> str | None:
    first, second = _first_map_of(1)
    if int(answer) == first:
        return None
    if int(answer) == second:
        return "that map ranks first second-most often; count rank 1 over all the 1s"
    return ("count, over the 1s among the first 1,000 test digits, which map has the largest "
            "contribution")


q2 = Exercise(
    "Exercise 2",
    "Among the first 1,000 test digits, take the 1s, each explained for its true class: which "
    "map index (0-8) has the largest contribution most often?",
    "filter_contribution(net, images, labels).contributions is N x 9; argmax(1) gives each "
    "image's top map; torch.bincount counts them.",
    """
import torch
from xai_helpers import contribution, data, models
net = models.load_pretrained("tiny_cnn_mnist")
mnist = data.load("mnist", "test", n=1_000, verbose=False)
result = contribution.filter_contribution(net, mnist.images, mnist.labels)
top = result.contributions[mnist.labels == 1].argmax(1)  # each 1's top map
answer = int(torch.bincount(top, minlength=9).argmax())
""",
    _check_first_map,
    wrong=lambda: _first_map_of(1)[1],
)


def _gap() -> float:
    net = models.load_pretrained("tiny_cnn_mnist")
    mnist = data.load("mnist", "test", n=1, verbose=False)
    r = contribution.filter_contribution(net, mnist.images, mnist.labels)
    return float(r.logits[0, r.target[0]] - r.contributions[0].sum())


def _check_gap(answer) -> str | None:
    truth, value = _gap(), float(answer)
    if abs(value - truth) < 1e-3:
        return None
    if abs(value) < 1e-6:
        return "the nine contributions do not make the whole logit: something is added after them"
    return (f"{value:.4f} is off: take the logit of the true class minus the sum of the nine "
            f"contributions")


q3 = Exercise(
    "Exercise 3",
    "For the first test digit (its true class): logit minus the sum of its nine contributions. "
    "What is it, and which parameter of the network is it?",
    "ContributionResult has logits, contributions and target; compare your number with "
    "result.bias (and with net.fc.bias).",
    """
from xai_helpers import contribution, data, models
net = models.load_pretrained("tiny_cnn_mnist")
mnist = data.load("mnist", "test", n=1, verbose=False)
r = contribution.filter_contribution(net, mnist.images, mnist.labels)
answer = float(r.logits[0, r.target[0]] - r.contributions[0].sum())  # = net.fc.bias[label]
""",
    _check_gap,
    wrong=lambda: 0.0,
)
