"""Exercises of notebook 00 (introduction): counting errors, gradient x input, its bias gap."""

from __future__ import annotations

import torch
from torch import nn

from .. import data, models, train
from . import Exercise

__all__ = ["q1", "q2", "q3"]


def _lenet_and_digits(n: int = 1_000):
    return models.load_pretrained("lenet_mnist"), data.load("mnist", "test", n=n, verbose=False)


def _errors() -> int:
    net, mnist = _lenet_and_digits()
    return int((train.predict(net, mnist.images).argmax(1) != mnist.labels).sum())


def _check_errors(answer) -> str | None:
    if isinstance(answer, torch.Tensor):
        answer = answer.item()
    if isinstance(answer, float) and 0 < answer < 1:
        return "that looks like a share; give the number of misclassified images (an int)"
    truth = _errors()
    if int(answer) == truth:
        return None
    return (f"{int(answer)} is {'too many' if int(answer) > truth else 'too few'}; compare "
            f"the argmax of the predictions with the labels of the first 1,000 images")


q1 = Exercise(
    "Exercise 1",
    "How many of the first 1,000 MNIST test images does lenet_mnist misclassify?",
    "train.predict(net, images) gives the logits; compare their argmax(1) with the labels.",
    """
from xai_helpers import data, models, train
net = models.load_pretrained("lenet_mnist")
mnist = data.load("mnist", "test", n=1_000, verbose=False)
answer = int((train.predict(net, mnist.images).argmax(1) != mnist.labels).sum())
""",
    _check_errors,
    wrong=lambda: 1_000 - _errors(),
)


def _check_input_x_gradient(fn) -> str | None:
    """On a bias-free linear model the exact answer is w_c * x; its sum is the logit."""
    if not callable(fn):
        return "give a function input_x_gradient(model, x, cls) -> map of x's shape"
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3, bias=False)).double().eval()
    x = torch.rand(2, 1, 3, 4, dtype=torch.float64)
    got = fn(model, x, 1)
    if got is None:
        return "your function returns None: return the map (a tensor of x's shape)"
    expected = (model[1].weight[1].view(1, 1, 3, 4) * x).detach()
    if not isinstance(got, torch.Tensor) or got.shape != x.shape:
        return (f"the map must have the input's shape {tuple(x.shape)}, got "
                f"{getattr(got, 'shape', type(got))}")
    if torch.allclose(got.detach(), expected, atol=1e-9):
        return None
    gradient = model[1].weight[1].view(1, 1, 3, 4).expand_as(x)
    if torch.allclose(got.detach(), gradient, atol=1e-9):
        return "this is the gradient alone: multiply it by the input"
    return (f"on a bias-free linear model the map should sum to the logit "
            f"({model(x)[:, 1].sum().item():.4f} over the two images), yours sums to "
            f"{got.sum().item():.4f}")


def _gradient_only(model, x, cls):
    x = x.clone().requires_grad_()
    model(x)[:, cls].sum().backward()
    return x.grad


q2 = Exercise(
    "Exercise 2",
    "Write input_x_gradient(model, x, cls): the map x * d logit_cls / dx for a batch x, "
    "without captum.",
    "Make a copy of x that requires grad, sum the class's logits over the batch, call "
    "torch.autograd.grad, and multiply the gradient by x.",
    """
import torch
def input_x_gradient(model, x, cls):
    x = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(model(x)[:, cls].sum(), x)
    return (x * grad).detach()
answer = input_x_gradient
""",
    _check_input_x_gradient,
    wrong=lambda: _gradient_only,
)


def _bias_gap() -> float:
    net, mnist = _lenet_and_digits(6)
    x = mnist.images.clone().requires_grad_()
    logits = net(x)[range(6), mnist.labels]
    (grad,) = torch.autograd.grad(logits.sum(), x)
    return float((logits - (x * grad).sum((1, 2, 3))).mean().detach())


def _check_bias_gap(answer) -> str | None:
    truth = _bias_gap()
    value = float(answer)
    if abs(value - truth) <= 0.01 * max(1.0, abs(truth)):
        return None
    if abs(value + truth) <= 0.01 * max(1.0, abs(truth)):
        return "the sign is flipped: the gap is logit minus the map's sum"
    return f"{value:.3f} is off; for each image take logit - sum of its map, then the mean"


q3 = Exercise(
    "Exercise 3",
    "For lenet_mnist and the first 6 test images (true classes), what is the mean of "
    "logit - sum(gradient x input), the part of the score the map does not show?",
    "Section 4 prints it per image ('biases'); average those six numbers, or recompute them "
    "with your input_x_gradient of exercise 2.",
    """
import torch
from xai_helpers import data, models
net = models.load_pretrained("lenet_mnist")
mnist = data.load("mnist", "test", n=6, verbose=False)
x = mnist.images.clone().requires_grad_()
logits = net(x)[range(6), mnist.labels]
(grad,) = torch.autograd.grad(logits.sum(), x)
answer = float((logits - (x * grad).sum((1, 2, 3))).mean().detach())
""",
    _check_bias_gap,
    wrong=lambda: -_bias_gap(),
)
