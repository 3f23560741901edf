"""Tests for xai_helpers.decline: the four ways, the decline rate (paper 2, Eq. 13), deletion
and insertion curves, the randomisation check and the summary table."""

from __future__ import annotations

import csv
import math
from collections import OrderedDict

import matplotlib
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from xai_helpers import config
from xai_helpers.decline import (
    WAYS,
    _spearman,
    blend,
    cascade_layers,
    class_sums,
    decline_rate,
    deletion_curve,
    insertion_curve,
    jet,
    measures,
    randomisation_check,
    summary_table,
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


@pytest.fixture
def summer() -> nn.Sequential:
    """logit 0 = sum of the 4 pixels, logit 1 = 0: p(class 0) = sigmoid(sum)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 1, 1, 1], [0, 0, 0, 0]]))
    return model


def test_deletion_and_insertion_curves_known_answer(summer):
    """Pixels 4, 3, 2, 1 ordered by a map equal to the image: deleting them leaves sums
    10, 6, 3, 1, 0; inserting them gives 0, 4, 7, 9, 10."""
    x = torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64).view(1, 1, 2, 2)
    sig = torch.sigmoid(torch.tensor([10.0, 6, 3, 1, 0], dtype=torch.float64)).float()
    deletion = deletion_curve(summer, x, 0, x, steps=4, patch=1)
    torch.testing.assert_close(deletion.scores[0], sig)
    assert deletion.fractions.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert deletion.area == pytest.approx(float(torch.trapezoid(sig, dx=0.25)), abs=1e-6)
    assert not deletion.higher_is_better
    insertion = insertion_curve(summer, x, 0, x[:, None], steps=4, baseline="zero")
    sig_in = torch.sigmoid(torch.tensor([0.0, 4, 7, 9, 10], dtype=torch.float64)).float()
    torch.testing.assert_close(insertion.scores[0], sig_in)
    assert insertion.higher_is_better and insertion.kind == "insertion"
    reverse = deletion_curve(summer, x, 0, -x, steps=4, patch=1)  # least important first
    assert reverse.area > deletion.area


def test_patch_deletion_removes_whole_cells_in_the_order_of_their_sums():
    """A 4 x 4 image in 2 x 2 cells; the map puts the most on the bottom-right cell although
    its single largest pixel is top-left: whole cells go, bottom-right first."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2, bias=False)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.ones(16), torch.zeros(16)]))
    x = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    maps = torch.zeros(1, 1, 4, 4)
    maps[0, 0, 0, 0] = 5.0  # top-left cell: sum 5
    maps[0, 0, 2:, 2:] = 2.0  # bottom-right cell: sum 8
    curve = deletion_curve(model, x, 0, maps, steps=4, patch=2)
    remaining = torch.tensor([16.0, 12, 8, 4, 0], dtype=torch.float64)  # a cell per step
    torch.testing.assert_close(curve.scores[0], torch.sigmoid(remaining).float())
    from xai_helpers.decline import _pixel_ranks
    first = (_pixel_ranks(maps, 2).view(4, 4) < 4)
    assert first[2:, 2:].all() and first.sum() == 4  # the bottom-right cell goes first
    with pytest.raises(ValueError, match="does not divide"):
        deletion_curve(model, x, 0, maps, patch=3)


def test_blurred_insertion_baseline_keeps_a_constant_image(summer):
    """The blur (normalised kernel, reflect padding) leaves a constant image as it is."""
    x = torch.full((1, 1, 2, 2), 0.5, dtype=torch.float64)
    curve = insertion_curve(summer, x, 0, torch.rand(1, 1, 2, 2), steps=2)
    assert torch.allclose(curve.scores, curve.scores[:, :1].expand(-1, 3))


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, (3, 20)).astype(float), rng.normal(size=(3, 20))
    ours = _spearman(a, b)
    for i in range(3):
        assert ours[i] == pytest.approx(spearmanr(a[i], b[i]).statistic)
    assert np.isnan(_spearman(np.ones((1, 5)), b[:1, :5])[0])  # constant map: undefined


@pytest.fixture
def gap_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 4, 3, padding=1)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(4, 6, 3, padding=1)), ("relu2", nn.ReLU()),
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(6, 5)),
    ])).eval()


def test_randomisation_cascade_from_the_top(gap_cnn):
    """Layers are randomised top first; a map that ignores the parameters keeps correlation 1,
    CAM does not; the caller's model is unchanged."""
    x = torch.rand(4, 3, 8, 8)
    assert cascade_layers(gap_cnn, x) == ["fc", "conv2", "conv1"]
    before = {k: v.clone() for k, v in gap_cnn.state_dict().items()}

    def the_image(model, inputs, targets):
        return inputs[:, None]

    fixed = randomisation_check(gap_cnn, the_image, x, 0)
    assert fixed.layers == ("fc", "conv2", "conv1") and fixed.correlation.shape == (3, 4)
    assert torch.allclose(fixed.correlation, torch.ones(3, 4)) and fixed.score == 1.0
    assert fixed.undefined == 0.0
    cam = randomisation_check(gap_cnn, "cam", x, 0)
    assert cam.score < 0.9 and cam.method == "cam"

    def zero_after_the_first_layer(model, inputs, targets):  # constant once fc is re-drawn
        same = torch.equal(model.fc.weight, gap_cnn.fc.weight)
        return inputs[:, None] * (1.0 if same else 0.0)

    blank = randomisation_check(gap_cnn, zero_after_the_first_layer, x, 0)
    assert blank.correlation.isnan().all() and blank.undefined == 1.0  # not counted as 0
    assert math.isnan(blank.score)
    assert all(torch.equal(before[k], v) for k, v in gap_cnn.state_dict().items())


def test_summary_table_ranks_by_direction():
    """Lower decline, deletion and randomisation are better, higher insertion is better;
    ties share the better rank; nan is not ranked."""
    results = {"a": {"decline_i": 0.1, "insertion": 0.5, "deletion": 0.2},
               "b": {"decline_i": 0.3, "insertion": 0.9, "deletion": 0.2},
               "c": {"decline_i": math.nan, "insertion": 0.1, "deletion": 0.4}}
    rows = {r["method"]: r for r in summary_table(results)}
    assert (rows["a"]["rank_decline_i"], rows["b"]["rank_decline_i"]) == (1, 2)
    assert "rank_decline_i" not in rows["c"]
    assert [rows[m]["rank_insertion"] for m in "abc"] == [2, 1, 3]
    assert [rows[m]["rank_deletion"] for m in "abc"] == [1, 1, 3]
    assert [r["method"] for r in summary_table(results)] == ["a", "b", "c"]
    assert rows["a"]["mean_rank"] == pytest.approx(4 / 3)


def test_measures_cover_every_direction(gap_cnn):
    """One call gives every measure of the summary table for a method."""
    x = torch.rand(6, 3, 8, 8)
    found = measures(gap_cnn, "cam", x, gap_cnn(x).argmax(1), steps=4)
    assert set(found) == {"decline_i", "decline_ii", "decline_iii", "decline_iv", "deletion",
                          "insertion", "randomisation"}
    assert all(math.isfinite(v) for v in found.values())
    assert 0 <= found["deletion"] <= 1 and 0 <= found["insertion"] <= 1


def test_committed_table_has_every_method_and_way():
    """data/results/decline_rate_cifar10.csv (full mode of benchmarks/bench_decline.py)."""
    path = config.RESULTS_DIR / "decline_rate_cifar10.csv"
    if not path.exists():
        pytest.skip(f"{path} not written yet (python benchmarks/bench_decline.py)")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["method", "way", "accuracy_a", "accuracy_b", "decline_rate",
                             "n_images"]
    methods = {"guided_backprop", "guided_gradcam", "gradcam", "cam", "cwm", "ccm", "cav",
               "occlusion", "integrated_gradients"}
    assert {(r["method"], r["way"]) for r in rows} == {(m, w) for m in methods for w in WAYS}
    assert all(int(r["n_images"]) == 10_000 for r in rows)
    for r in rows:
        a, b = float(r["accuracy_a"]), float(r["accuracy_b"])
        assert float(r["decline_rate"]) == pytest.approx((a - b) / a)


def test_the_batchnorm_variant_also_reinitialises_batch_norm():
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(3, 4, 3, padding=1)), ("bn", nn.BatchNorm2d(4)), ("relu", nn.ReLU()),
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(4, 2)),
    ])).eval()
    x = torch.rand(2, 3, 8, 8)
    assert cascade_layers(net, x) == ["fc", "conv"]
    assert cascade_layers(net, x, batchnorm=True) == ["fc", "bn", "conv"]
    with_bn = randomisation_check(net, "cam", x, 0, batchnorm=True)
    assert with_bn.layers == ("fc", "bn", "conv") and with_bn.correlation.shape == (3, 2)
