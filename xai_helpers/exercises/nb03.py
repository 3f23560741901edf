"""Exercises of notebook 03 (paper 2's Generative Contribution Mappings)."""

from __future__ import annotations

import torch

from .. import data, models, train
from . import Exercise

__all__ = ["q1", "q2", "q3"]


def _check_scores(fn) -> str | None:
    if not callable(fn):
        return "give a function gcm_scores(cwm, image) -> N x K"
    g = torch.Generator().manual_seed(0)
    cwm, image = torch.randn(2, 4, 5, 6, generator=g), torch.rand(2, 3, 5, 6, generator=g)
    got = fn(cwm, image)
    if got is None:
        return "your function returns None"
    expected = (cwm.unsqueeze(2) * image.unsqueeze(1)).mean(dim=(2, 3, 4))
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return f"expected an N x K = {tuple(expected.shape)} tensor"
    if torch.allclose(got, expected, atol=1e-6):
        return None
    if torch.allclose(got, cwm.mean(dim=(2, 3)), atol=1e-6):
        return "this is the mean of the CWM alone: the CCM is the CWM times the image (Eq. 3)"
    if torch.allclose(got, (cwm.unsqueeze(2) * image.unsqueeze(1)).sum(dim=(2, 3, 4)), atol=1e-4):
        return "this is the sum; Eq. 4 takes the mean over R x C x D"
    return ("tile the CWM over the D channels (Eq. 2), multiply by the image (Eq. 3), average "
            "(Eq. 4)")


q1 = Exercise(
    "Exercise 1",
    "Write gcm_scores(cwm, image): Eq. 2-4, from the CWM (N x K x R x C) and the image "
    "(N x D x R x C) to the class scores N x K.",
    "cwm.unsqueeze(2) * image.unsqueeze(1) is the CCM, N x K x D x R x C; average over the last "
    "three axes.",
    """
def gcm_scores(cwm, image):
    ccm = cwm.unsqueeze(2) * image.unsqueeze(1)  # Eq. 2-3
    return ccm.mean(dim=(2, 3, 4))                # Eq. 4
answer = gcm_scores
""",
    _check_scores,
    wrong=lambda: (lambda cwm, image: cwm.mean(dim=(2, 3))),
)


def _true_score() -> tuple[float, float]:
    net = models.load_pretrained("gcm_cifar10")
    cifar = data.load("cifar10", "test", n=1, verbose=False)
    with torch.no_grad():
        cwm, ccm, scores = net.maps(cifar.images)
    y = int(cifar.labels[0])
    return float(ccm[0, y].mean()), float(cwm[0, y].mean())


def _check_true_score(answer) -> str | None:
    truth, cwm_mean = _true_score()
    value = float(answer)
    if abs(value - truth) < 1e-4:
        return None
    if abs(value - cwm_mean) < 1e-4:
        return "that is the mean of the CWM; the score is the mean of the CCM (CWM x image)"
    return (f"{value:.4f} is off: net.maps(x) returns (cwm, ccm, scores); average the true "
            f"class's CCM")


q2 = Exercise(
    "Exercise 2",
    "gcm_cifar10 and the first test image: the mean of its true class's CCM. Check that it is "
    "the score GCM gives that class.",
    "cwm, ccm, scores = net.maps(x); ccm[0, label].mean() and scores[0, label] agree.",
    """
import torch
from xai_helpers import data, models
net = models.load_pretrained("gcm_cifar10")
cifar = data.load("cifar10", "test", n=1, verbose=False)
with torch.no_grad():
    cwm, ccm, scores = net.maps(cifar.images)
answer = float(ccm[0, cifar.labels[0]].mean())  # = scores[0, label]
""",
    _check_true_score,
    wrong=lambda: _true_score()[1],
)


def _agreement() -> tuple[float, float]:
    cifar = data.load("cifar10", "test", n=200, verbose=False)
    signed, clipped = (train.predict(models.load_pretrained(n), cifar.images).argmax(1)
                       for n in ("gcm_cifar10", "gcm_cifar10_clip"))
    return float((signed == clipped).float().mean()), float((signed == cifar.labels).float().mean())


def _check_agreement(answer) -> str | None:
    truth, accuracy = _agreement()
    value = float(answer)
    if value > 1:
        return "give a share between 0 and 1"
    if abs(value - truth) < 1e-6:
        return None
    if abs(value - accuracy) < 1e-6:
        return "that is the signed GCM's accuracy; compare the two models' predictions"
    return f"{value:.3f} is off: the share of images where both argmaxes are the same class"


q3 = Exercise(
    "Exercise 3",
    "On the first 200 test images: in what share do the signed GCM (gcm_cifar10) and the clipped "
    "one (gcm_cifar10_clip) predict the same class? Higher or lower than their accuracies?",
    "train.predict(model, images).argmax(1) for both models; compare them image by image.",
    """
from xai_helpers import data, models, train
cifar = data.load("cifar10", "test", n=200, verbose=False)
signed = train.predict(models.load_pretrained("gcm_cifar10"), cifar.images).argmax(1)
clipped = train.predict(models.load_pretrained("gcm_cifar10_clip"), cifar.images).argmax(1)
answer = float((signed == clipped).float().mean())
""",
    _check_agreement,
    wrong=lambda: _agreement()[1],
)
