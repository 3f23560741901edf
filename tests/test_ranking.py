"""Tests for xai_helpers.ranking: per-image terms, paired bootstrap intervals, ranks that only
order what the images separate, by-construction values marked and not ranked."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from xai_helpers.decline import DeclineRate
from xai_helpers.faithfulness import Curve, FaithfulnessCorrelation, Randomisation
from xai_helpers.ranking import (
    MEASURES,
    PerImage,
    bootstrap,
    measures,
    per_image,
    rank_table,
    separated,
)


def decline(a: list[int], b: list[int], method: str = "m") -> DeclineRate:
    ta, tb = torch.tensor(a, dtype=torch.bool), torch.tensor(b, dtype=torch.bool)
    acc_a, acc_b = ta.float().mean().item(), tb.float().mean().item()
    return DeclineRate(method, "i", acc_a, acc_b, (acc_a - acc_b) / acc_a, len(a),
                       correct_a=ta, correct_b=tb)


def test_per_image_terms_give_back_each_measure():
    """The ratio of the per-image sums is the measure each result reports."""
    r = decline([1, 1, 1, 0], [1, 0, 1, 1])
    assert per_image(r).value == pytest.approx(r.decline_rate)  # (3 - 2) / 3 (B's 4th is moot)
    scores = torch.rand(5, 3)
    curve = Curve("deletion", torch.tensor([0.0, 0.5, 1.0]), scores,
                  float(torch.trapezoid(scores, dx=0.5, dim=1).mean()), False)
    assert per_image(curve).value == pytest.approx(curve.area)
    corr = torch.tensor([[0.5, math.nan, 0.1], [0.3, math.nan, math.nan]])
    rand = Randomisation("m", ("a", "b"), corr)
    assert per_image(rand).value == pytest.approx(rand.score)  # NaNs left out, not 0
    assert per_image(rand).value == pytest.approx(0.3)
    fc = FaithfulnessCorrelation(torch.tensor([0.2, math.nan, 0.6]), 10, 5)
    assert per_image(fc).value == pytest.approx(fc.score) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="no per-image results"):
        per_image(DeclineRate("m", "i", 1.0, 1.0, 0.0, 3))
    with pytest.raises(ValueError, match="shape"):
        per_image(np.zeros((2, 2)))


def test_bootstrap_interval_matches_the_binomial_width():
    """A decline rate of 1 - B/A with A = 1: its bootstrap interval is about the binomial
    +-1.96 sqrt(p (1 - p) / n) around 1 - B."""
    rng = np.random.default_rng(0)
    n, p = 2000, 0.2
    b = (rng.random(n) > p).astype(int)
    iv = bootstrap({"m": decline([1] * n, list(b))}, n_boot=2000)["m"]
    half = 1.96 * math.sqrt(iv.value * (1 - iv.value) / n)
    assert iv.low < iv.value < iv.high
    assert (iv.high - iv.low) / 2 == pytest.approx(half, rel=0.1)
    assert iv.draws.shape == (2000,)


def test_pairing_separates_a_small_consistent_difference():
    """Two methods whose per-image values differ by a small constant on noisy images: their own
    intervals overlap, the paired difference still separates them; a method and a copy of
    itself are never separated; different image counts are refused."""
    rng = np.random.default_rng(1)
    base = rng.normal(0.5, 0.2, 400)
    ivs = bootstrap({"a": base, "b": base + 0.01, "c": base.copy()})
    assert ivs["a"].high > ivs["b"].low  # overlapping intervals
    assert separated(ivs["b"], ivs["a"]) and not separated(ivs["a"], ivs["c"])
    with pytest.raises(ValueError, match="different numbers of images"):
        bootstrap({"a": base, "b": base[:10]})


def test_rank_table_ranks_only_what_the_intervals_separate():
    """Higher insertion is better. a and b are far apart; c is b plus noise too small to
    separate on 30 images: b and c share rank 1 or 2 with a behind; a by-construction value is
    marked and not ranked, and does not push the others down."""
    rng = np.random.default_rng(2)
    b = rng.uniform(0.6, 0.9, 30)
    results = {"a": {"insertion": b - 0.3, "decline_i": decline([1] * 30, [1] * 30, "a")},
               "b": {"insertion": b, "decline_i": decline([1] * 30, [1] * 27 + [0] * 3, "b")},
               "c": {"insertion": b + rng.normal(0, 0.001, 30),
                     "decline_i": decline([1] * 30, [1] * 27 + [0] * 3, "c")}}
    rows = {r["method"]: r for r in rank_table(results, by_construction={
        ("a", "decline_i"): "holds by definition"})}
    assert rows["b"]["rank_insertion"] == rows["c"]["rank_insertion"] == 1
    assert rows["a"]["rank_insertion"] == 3
    assert rows["a"]["rank_decline_i"] is None
    assert rows["a"]["why_decline_i"] == "holds by definition"
    assert rows["a"]["decline_i"].value == 0.0  # still reported
    assert rows["b"]["rank_decline_i"] == rows["c"]["rank_decline_i"] == 1
    assert [r["method"] for r in rank_table(results)] == ["a", "b", "c"]  # no re-sorting
    assert "mean_rank" not in rows["a"]


def test_measures_give_every_measure_with_per_image_terms():
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(3, 4, 3, padding=1)), ("relu", nn.ReLU()),
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(4, 3)),
    ])).eval()
    x = torch.rand(6, 3, 16, 16)  # 768 values: room for the 224 of a faithfulness subset
    found = measures(net, "cam", x, net(x).argmax(1), steps=4)
    assert set(found) == set(MEASURES)
    terms = {m: per_image(r) for m, r in found.items()}
    assert all(isinstance(t, PerImage) and len(t.numerator) == 6 for t in terms.values())
    rows = rank_table({"cam": found, "again": found})
    assert all(rows[0]["rank_" + m] in (1, None) for m in MEASURES)
