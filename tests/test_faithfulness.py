"""Tests for xai_helpers.faithfulness: deletion and insertion curves, the randomisation
check, and faithfulness correlation cross-checked against Quantus."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from xai_helpers.faithfulness import (
    _pixel_ranks,
    _spearman,
    cascade_layers,
    deletion_curve,
    faithfulness_correlation,
    insertion_curve,
    output_drops,
    random_subsets,
    randomisation_check,
)


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


def test_faithfulness_correlation_is_one_for_exact_contributions():
    """A linear model without bias and a zero baseline: removing a subset S drops the logit by
    exactly sum_S W x, so the map W x correlates 1 with the drops, -W x gives -1, and a map
    blind to the input's values (W) correlates less."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4, bias=False)).double().eval()
    x = torch.rand(5, 3, 8, 8, dtype=torch.float64)
    w = model[1].weight.detach().view(4, 3, 8, 8)
    target = torch.tensor([0, 1, 2, 3, 0])
    exact = w[target] * x
    found = faithfulness_correlation(model, x, target, exact, runs=20, subset_size=16)
    assert found.correlation.shape == (5,) and found.runs == 20 and found.subset_size == 16
    torch.testing.assert_close(found.correlation, torch.ones(5))
    assert found.score == pytest.approx(1.0) and found.higher_is_better
    backwards = faithfulness_correlation(model, x, target, -exact, runs=20, subset_size=16)
    torch.testing.assert_close(backwards.correlation, -torch.ones(5))
    blind = faithfulness_correlation(model, x, target, w[target], runs=20, subset_size=16)
    assert blind.score < 0.99
    flat = faithfulness_correlation(model, x, target, torch.ones_like(x), runs=20,
                                    subset_size=16)  # every subset sums the same: undefined
    assert flat.correlation.isnan().all() and flat.undefined == 1.0


def test_shared_subsets_and_drops_give_the_same_answer():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3)).eval()
    x, maps = torch.rand(6, 3, 4, 4), torch.randn(6, 1, 4, 4)
    subsets = random_subsets(6, 48, runs=10, size=5, seed=3)
    assert subsets.shape == (6, 10, 5)
    assert all(len(set(s.tolist())) == 5 for s in subsets.flatten(0, 1))  # no repeats
    assert torch.equal(subsets, random_subsets(6, 48, runs=10, size=5, seed=3))
    drops = output_drops(model, x, 1, subsets, batch_size=7)  # several passes
    alone = faithfulness_correlation(model, x, 1, maps, runs=10, subset_size=5, seed=3)
    shared = faithfulness_correlation(model, x, 1, maps, subsets=subsets, drops=drops)
    torch.testing.assert_close(alone.correlation, shared.correlation)
    with pytest.raises(ValueError, match="between 1 and 48"):
        random_subsets(2, 48, size=49)
    with pytest.raises(ValueError, match="do not match"):
        faithfulness_correlation(model, x, 1, maps, subsets=subsets, drops=drops[:, :3])


def test_faithfulness_correlation_equals_quantus(monkeypatch):
    """The peer cross-check: on a small CNN and a few images, Quantus 0.6.0's
    FaithfulnessCorrelation (Pearson, logits, baseline "black" = the image's minimum) and the
    course's give the same per-image correlations on the subsets Quantus drew (recorded from
    its calls to NumPy's global generator, which it also uses for other things in between)."""
    quantus = pytest.importorskip("quantus")
    if not hasattr(np, "trapz"):  # removed in NumPy 2.4; Quantus 0.6.0 still refers to it
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(16, 5)).eval()
    x = torch.rand(4, 3, 8, 8)
    y = model(x).argmax(1)
    maps = torch.randn(4, 1, 8, 8) + x.sum(1, keepdim=True)  # per pixel, broadcast over RGB
    runs, size = 12, 20
    drawn, choice = [], np.random.choice

    def recording_choice(*args, **kwargs):
        drawn.append(choice(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(np.random, "choice", recording_choice)
    np.random.seed(7)
    theirs = quantus.FaithfulnessCorrelation(
        nr_runs=runs, subset_size=size, perturb_baseline="black", abs=False, normalise=False,
        return_aggregate=False, disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=maps.numpy(), device="cpu",
        softmax=False)
    assert len(drawn) == runs * len(x)  # run by run, one draw per image
    subsets = torch.from_numpy(np.array(drawn).reshape(runs, len(x), size)).permute(1, 0, 2)
    black = x.amin(dim=(1, 2, 3), keepdim=True)
    ours = faithfulness_correlation(model, x, y, maps, subsets=subsets, baseline=black)
    np.testing.assert_allclose(ours.correlation.numpy(), np.array(theirs), atol=1e-4)
    assert np.ptp(theirs) > 0.1  # the images differ: the agreement is not one number
    other = faithfulness_correlation(model, x, y, -maps, subsets=subsets, baseline=black)
    assert not np.allclose(other.correlation.numpy(), np.array(theirs), atol=1e-2)
