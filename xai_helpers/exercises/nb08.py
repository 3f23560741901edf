"""Exercises of notebook 08 (your model, your images: explore.explain and its measures)."""

from __future__ import annotations

from functools import cache

import torch

from .. import data, explore, methods
from . import Exercise

__all__ = ["q1", "q2", "q3"]


def _fits(name: str) -> set[str]:
    return set(methods.applicable(explore.load_model(name).model))


def _check_gcm_only(answer) -> str | None:
    expected = _fits("gcm_cifar10") - _fits("vgg_cifar10")
    given = {answer} if isinstance(answer, str) else set(answer)
    if given == expected:
        return None
    unknown = given - set(methods.METHODS)
    if unknown:
        return f"{sorted(unknown)} are not method names; methods.METHODS lists them"
    if given >= expected:
        return f"{sorted(given - expected)} apply to both models (or to neither)"
    return (f"methods.applicable(model) lists the methods that fit; compare the two lists "
            f"(you have {len(given & expected)} of the {len(expected)})")


q1 = Exercise(
    "Exercise 1",
    "Which methods apply to gcm_cifar10 but not to vgg_cifar10? Give a set of method names.",
    "explore.load_model(name).model, then methods.applicable(model) for both; a set "
    "difference.",
    """
from xai_helpers import explore, methods
fits = {n: set(methods.applicable(explore.load_model(n).model))
        for n in ("gcm_cifar10", "vgg_cifar10")}
answer = fits["gcm_cifar10"] - fits["vgg_cifar10"]
""",
    _check_gcm_only,
    wrong=lambda: {"cwm", "ccm", "cam"},
)


def _toy() -> explore.Explanation:
    """Four images, one method, with measures chosen so that each way of counting differs."""
    measures = {"gradcam": {"deletion": torch.tensor([0.2, 0.5, 0.4, 0.1]),
                            "insertion": torch.tensor([0.9, 0.3, 0.6, 0.5])},
                "random": {"deletion": torch.tensor([0.3, 0.4, 0.4, 0.3]),
                           "insertion": torch.tensor([0.5, 0.5, 0.5, 0.5])}}
    return explore.Explanation(torch.zeros(4, dtype=torch.long), torch.zeros(4, 10),
                               {"gradcam": torch.zeros(4, 1, 4, 4)}, {}, measures)


def _check_beats(fn) -> str | None:
    if not callable(fn):
        return "give a function beats(result, method, measure) -> float"
    toy = _toy()
    raw = {m: fn(toy, "gradcam", m) for m in ("deletion", "insertion")}
    if any(v is None for v in raw.values()):
        return "your function returns None"
    got = {m: float(v) for m, v in raw.items()}
    if all(abs(v - 0.5) < 1e-6 for v in got.values()):  # strict wins on 2 of 4 images each
        return None
    if any(abs(v - 0.75) < 1e-6 for v in got.values()):
        return "a tie (the same area as the random order) does not beat it; count strict wins"
    if abs(got["deletion"] - 0.25) < 1e-6:
        return ("for deletion, lower is better: the map beats the random order where its area "
                "is below the random order's on the same image")
    return (f"on a 4-image example both shares are 0.5, you give deletion "
            f"{got['deletion']:.3f} and insertion {got['insertion']:.3f}")


q2 = Exercise(
    "Exercise 2",
    "Write beats(result, method, measure): the share of images on which the map of `method` "
    "beats the random order in `measure` ('deletion': a lower area, 'insertion': a higher "
    "one), from an explore.Explanation.",
    "result.measures[method][measure] and result.measures['random'][measure] are (N,) tensors "
    "of the same images; compare them with < or >, then take the mean of the booleans.",
    """
def beats(result, method, measure):
    mine, floor = result.measures[method][measure], result.measures["random"][measure]
    wins = mine < floor if measure == "deletion" else mine > floor
    return float(wins.float().mean())
answer = beats
""",
    _check_beats,
    wrong=lambda: (lambda result, method, measure: float(
        (result.measures[method][measure] > result.measures["random"][measure]).float().mean())),
)


@cache
def _randomisation() -> dict[str, float]:
    vgg = explore.load_model("vgg_cifar10")
    test = data.load("cifar10", "test", n=20, verbose=False)
    result = explore.explain(vgg.model, test.images, curves=False, randomisation=True,
                             layer=explore.gradcam_layer(vgg.model, vgg.size))
    return {n: float(m["randomisation"].nanmean()) for n, m in result.measures.items()}


def _check_least(answer) -> str | None:
    values = _randomisation()
    best = min(values, key=values.get)
    if answer == best:
        return None
    if answer not in values:
        return f"give one of {sorted(values)}"
    if answer == max(values, key=values.get):
        return ("that map changes least when the weights are destroyed: the question asks for "
                "the one that depends most on them (the lowest correlation)")
    return (f"{answer}'s mean correlation is {values[answer]:.3f}; one method's is lower "
            f"(explore.summarise(result) lists them)")


q3 = Exercise(
    "Exercise 3",
    "vgg_cifar10 on the first 20 CIFAR-10 test images, every applicable method with the "
    "randomisation check (Grad-CAM at explore.gradcam_layer): which method's maps depend most "
    "on the learned weights (the lowest mean randomisation correlation)? Give its name.",
    "explore.explain(model, images, curves=False, randomisation=True, layer=...), then the "
    "method with the lowest result.measures[m]['randomisation'].nanmean().",
    """
from xai_helpers import data, explore
vgg = explore.load_model("vgg_cifar10")
test = data.load("cifar10", "test", n=20, verbose=False)
result = explore.explain(vgg.model, test.images, curves=False, randomisation=True,
                         layer=explore.gradcam_layer(vgg.model, vgg.size))
means = {n: float(m["randomisation"].nanmean()) for n, m in result.measures.items()}
answer = min(means, key=means.get)
""",
    _check_least,
    wrong=lambda: max(_randomisation(), key=_randomisation().get),
)
