"""Tests for xai_helpers.decline: the four ways and the decline rate (paper 2, Eq. 13), its
per-image results on disk and the committed table."""

from __future__ import annotations

import csv

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from xai_helpers import config
from xai_helpers.decline import (
    WAYS,
    blend,
    class_sums,
    decline_rate,
    jet,
    read_results,
    write_results,
)
from xai_helpers.gcm import GCM


@pytest.fixture
def linear() -> nn.Sequential:
    """logits = W x, no bias, float64: per-class maps W_k * x sum exactly to the logits."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5, bias=False)).double().eval()


def linear_maps(model, x, targets=None):
    """The hand-built method: map of class k = W_k * x (all classes)."""
    w = model[1].weight.detach().view(1, -1, *x.shape[1:])
    return w * x[:, None]


def test_jet_is_matplotlibs():
    """The continuous jet equals matplotlib's 256-entry table at its points."""
    u = torch.linspace(0, 1, 256, dtype=torch.float64)
    lut = matplotlib.colormaps["jet"](np.linspace(0, 1, 256))[:, :3]
    np.testing.assert_allclose(jet(u).numpy(), lut, atol=1e-12)


def test_four_ways_on_a_tiny_array():
    """Sums of the visual maps, worked by hand: class 0 = [-1, 2], class 1 = [0, 1] over a
    grey image [0.5, 1]."""
    maps = torch.tensor([[-1.0, 2.0], [0.0, 1.0]], dtype=torch.float64).view(1, 2, 1, 1, 2)
    image = torch.tensor([0.5, 1.0], dtype=torch.float64).view(1, 1, 1, 2)
    sums = {way: class_sums(maps, image, way)[0].tolist() for way in WAYS}
    assert sums["i"] == [1.0, 1.0]
    assert sums["ii"] == [3.0, 1.0]
    assert sums["iv"] == [1.5, 1.0]
    # (iii): one range [-1, 2] for the image -> u = [0, 1] and [1/3, 2/3]; R+G+B of jet:
    # jet(0) = (0, 0, .5), jet(1) = (.5, 0, 0), jet(1/3) = (0, 5/6, 1),
    # jet(2/3) = (1, 1 - (2/3 - .64) / .27, 0); image term 0.2 * 3 * (0.5 + 1) = 0.9
    green = 1 - (2 / 3 - 0.64) / 0.27
    assert sums["iii"] == pytest.approx([0.7 * 1.0 + 0.9, 0.7 * (5 / 6 + 1 + 1 + green) + 0.9])
    per_map = blend(maps, image, scale="map").flatten(2).sum(2)[0].tolist()
    assert per_map == pytest.approx([1.6, 1.6])  # the CAM demo's per-map range: no difference
    rgb = blend(maps, image.expand(1, 3, 1, 2))
    assert rgb.shape == (1, 2, 3, 1, 2)
    assert rgb[0, 0, :, 0, 0].tolist() == pytest.approx([0.1, 0.1, 0.45])  # .7 jet(0) + .2 x .5


def test_times_input_keeps_the_channels():
    """Way (iv) of a per-element map multiplies channel by channel; a per-pixel map is tiled."""
    maps = torch.arange(6.0).view(1, 1, 3, 1, 2)
    image = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).view(1, 3, 1, 2)
    assert class_sums(maps, image, "iv").item() == sum(i * (i + 1) for i in range(6))
    assert class_sums(maps[:, :, :1], image, "iv").item() == 0 * 1 + 1 * 2 + 0 * 3 + 1 * 4 + 0 + 6


def test_decline_rate_is_zero_when_the_maps_sum_to_the_logits(linear):
    """Eq. 13 on a model whose class maps sum exactly to its logits: B = A, rate 0; with the
    model's own predictions as labels, A = B = 1."""
    torch.manual_seed(2)
    x = torch.rand(40, 3, 4, 4, dtype=torch.float64)
    labels = linear(x).argmax(1)
    rows = decline_rate(linear, linear_maps, x, labels, ways=("i",), batch_size=16)
    assert [(r.method, r.way, r.accuracy_a, r.accuracy_b, r.decline_rate, r.n_images)
            for r in rows] == [("linear_maps", "i", 1.0, 1.0, 0.0, 40)]
    noisy = (labels + torch.arange(40) % 2) % 5  # half of the labels wrong
    row = decline_rate(linear, linear_maps, x, noisy, ways=("i",))[0]
    assert (row.accuracy_a, row.accuracy_b, row.decline_rate) == (0.5, 0.5, 0.0)
    for method in ("cav", "integrated_gradients"):  # W_k * x again, via the registry
        assert decline_rate(linear, method, x, labels, ways=("i",))[0].decline_rate == 0.0


def test_decline_rate_is_one_when_the_maps_rank_the_classes_backwards(linear):
    torch.manual_seed(2)
    x = torch.rand(30, 3, 4, 4, dtype=torch.float64)
    labels = linear(x).argmax(1)

    def backwards(model, inputs, targets=None):
        return -linear_maps(model, inputs)

    row = decline_rate(linear, backwards, x, labels, ways=("i",))[0]
    assert (row.accuracy_a, row.accuracy_b, row.decline_rate) == (1.0, 0.0, 1.0)


def test_gcm_maps_reflect_its_classification_exactly():
    """Paper 2's claim made exact: the sum of CCM (way i) and of CWM x image (way iv) is
    R C D times the class score, so their decline rate is 0."""
    torch.manual_seed(0)
    model = GCM(10, 3).eval()
    x = torch.rand(12, 3, 8, 8)
    labels = model(x).argmax(1)
    ccm = {r.way: r.decline_rate for r in decline_rate(model, "ccm", x, labels)}
    cwm = {r.way: r.decline_rate for r in decline_rate(model, "cwm", x, labels)}
    assert ccm["i"] == 0.0 and cwm["iv"] == 0.0
    assert set(ccm) == set(WAYS)


def test_decline_rows_have_the_csv_columns(linear):
    x = torch.rand(6, 3, 4, 4, dtype=torch.float64)
    rows = decline_rate(linear, linear_maps, x, torch.zeros(6, dtype=torch.long))
    assert [r.way for r in rows] == list(WAYS)
    assert list(rows[0].as_row()) == ["method", "way", "accuracy_a", "accuracy_b",
                                      "decline_rate", "n_images"]
    with pytest.raises(ValueError, match="way must be one of"):
        decline_rate(linear, linear_maps, x, torch.zeros(6, dtype=torch.long), ways=("v",))


def test_results_round_trip_with_their_per_image_answers(linear, tmp_path):
    """write_results / read_results keep every row and the per-image answers they came from."""
    x = torch.rand(8, 3, 4, 4, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    rows = decline_rate(linear, linear_maps, x, labels)
    assert rows[0].correct_a.shape == (8,) and rows[0].correct_a.dtype == torch.bool
    assert rows[0].correct_a.float().mean().item() == pytest.approx(rows[0].accuracy_a)
    path = write_results(rows, tmp_path / "t.csv", {(r.method, r.way): {"x": 1} for r in rows})
    back = read_results(path)
    assert back == rows  # the per-image tensors are not part of equality ...
    for a, b in zip(back, rows, strict=True):  # ... so compare them here
        assert torch.equal(a.correct_a, b.correct_a) and torch.equal(a.correct_b, b.correct_b)
    (tmp_path / "t_per_image.npz").unlink()
    assert read_results(path)[0].correct_a is None
    with pytest.raises(FileNotFoundError, match="bench_decline"):
        read_results(tmp_path / "missing.csv")


def test_committed_table_has_every_method_and_way():
    """data/results/decline_rate_cifar10.csv (full mode of benchmarks/bench_decline.py) and its
    per-image answers: the accuracies are their means, the interval holds the value."""
    path = config.RESULTS_DIR / "decline_rate_cifar10.csv"
    if not path.exists():
        pytest.skip(f"{path} not written yet (python benchmarks/bench_decline.py)")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["method", "way", "accuracy_a", "accuracy_b", "decline_rate",
                             "n_images", "decline_rate_low", "decline_rate_high"]
    methods = {"guided_backprop", "guided_gradcam", "gradcam", "cam", "cwm", "ccm", "cav",
               "occlusion", "integrated_gradients"}
    assert {(r["method"], r["way"]) for r in rows} == {(m, w) for m in methods for w in WAYS}
    assert all(int(r["n_images"]) == 10_000 for r in rows)
    for r in rows:
        a, b = float(r["accuracy_a"]), float(r["accuracy_b"])
        assert float(r["decline_rate"]) == pytest.approx((a - b) / a)
        assert float(r["decline_rate_low"]) <= float(r["decline_rate"]) + 1e-12
        assert float(r["decline_rate"]) <= float(r["decline_rate_high"]) + 1e-12
    for r in read_results(path):
        assert len(r.correct_a) == 10_000
        assert r.correct_a.double().mean().item() == pytest.approx(r.accuracy_a, abs=1e-9)
        assert r.correct_b.double().mean().item() == pytest.approx(r.accuracy_b, abs=1e-9)
