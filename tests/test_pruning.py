"""Region pruning (paper 4): masks hold through retraining, rates are honoured, regions and
their index are right on a hand-made weight image, the shares are the masks' shares, and the
committed results agree with the committed checkpoint."""

from __future__ import annotations

import pytest
import torch

from xai_helpers import data, models, pruning, train
from xai_helpers.models import Recipe

FAST = Recipe(epochs=1, batch_size=50, optimizer="sgd_plain", lr=0.1)


@pytest.fixture(scope="module")
def mnist_small():
    """300 training and 200 test images from the committed samples (quick mode)."""
    return (data.load("mnist", "train", n=300, verbose=False),
            data.load("mnist", "test", n=200, verbose=False))


@pytest.fixture
def mlp():
    torch.manual_seed(0)
    return models.mlp("sigmoid").eval()


def _neuron_image(**pixels):
    """A 28 x 28 image that is 0 except where given."""
    image = torch.zeros(28, 28)
    for (r, c), v in pixels.items():
        image[r, c] = v
    return image


def _hand_made() -> tuple[torch.Tensor, torch.Tensor]:
    """Two neurons. Neuron 0: a 2x2 block of |w| 0.5 (signs mixed), an L of three weights
    (0.1, 0.2, 0.3) and two weights (0.05, 0.07) that touch only diagonally. Neuron 1: the
    same 2x2 block at the same place with |w| 0.9."""
    w = torch.zeros(2, 28, 28)
    w[0, 2:4, 2:4] = torch.tensor([[0.5, -0.5], [-0.5, 0.5]])
    w[0, 10, 10], w[0, 11, 10], w[0, 11, 11] = 0.1, -0.2, 0.3
    w[0, 20, 20], w[0, 21, 21] = 0.05, -0.07
    w[1, 2:4, 2:4] = 0.9
    return w.view(2, 784), (w != 0).view(2, 784)


def test_regions_and_their_index_on_a_hand_made_weight_image():
    """Test whether regions, their neuron, size and mean |w| are found per neuron."""
    weight, mask = _hand_made()
    four = pruning.find_regions(weight, mask, connectivity=4)
    assert len(four.index) == 5  # block, L, two diagonal singles; neuron 1's block
    assert four.neuron.tolist() == [0, 0, 0, 0, 1]
    assert four.size.tolist() == [4, 3, 1, 1, 4]
    assert four.index.tolist() == pytest.approx([0.5, 0.2, 0.05, 0.07, 0.9])
    assert four.labels.shape == (2, 28, 28)
    assert (four.labels[0, 2:4, 2:4] == 1).all() and (four.labels[1, 2:4, 2:4] == 5).all()
    assert (four.labels[~mask.view(2, 28, 28)] == 0).all()
    eight = pruning.find_regions(weight, mask, connectivity=8)
    assert eight.size.tolist() == [4, 3, 2, 4]  # the diagonal pair is one region now
    assert eight.index.tolist() == pytest.approx([0.5, 0.2, 0.06, 0.9])
    with pytest.raises(ValueError, match="connectivity must be 4 or 8"):
        pruning.find_regions(weight, mask, connectivity=6)


def test_region_step_deletes_the_regions_of_smallest_index():
    """Test whether round(rate * R) regions go, the smallest index first, whole."""
    weight, mask = _hand_made()
    keep, regions = pruning.region_mask(weight, mask, rate=0.4, connectivity=4)
    assert round(0.4 * len(regions.index)) == 2  # the two diagonal singles
    expected = mask.clone().view(2, 28, 28)
    expected[0, 20, 20] = expected[0, 21, 21] = False
    assert torch.equal(keep, expected.view(2, 784))
    keep, _ = pruning.region_mask(weight, mask, rate=0.6, connectivity=4)  # 3: the L too
    assert int(keep.sum()) == 8 and bool(keep.view(2, 28, 28)[0, 2:4, 2:4].all())


def test_magnitude_step_honours_the_rate(mlp):
    """Test whether step 1 deletes exactly rate * n weights, all smaller than the kept ones."""
    weight = mlp.fc1.weight.detach()
    for rate in (0.4, 0.5):
        mask = pruning.magnitude_mask(weight, rate)
        assert int((~mask).sum()) == round(rate * weight.numel())
        assert weight.abs()[~mask].max() <= weight.abs()[mask].min()
    half = pruning.magnitude_mask(weight, 0.5)
    more = pruning.magnitude_mask(weight, 0.25, half)  # further deletions stay inside
    assert int((~more).sum()) == round(0.75 * weight.numel()) and not (more & ~half).any()


def test_shares_match_the_masks():
    """Test whether the shares count neurons > 90% and <= 40% pruned, from the mask."""
    mask = torch.ones(5, 100, dtype=torch.bool)
    for neuron, pruned in enumerate([95, 91, 50, 40, 10]):
        mask[neuron, :pruned] = False
    assert pruning.pruned_fraction(mask).tolist() == pytest.approx([0.95, 0.91, 0.5, 0.4, 0.1])
    assert pruning.neuron_shares(mask) == (pytest.approx(0.4), pytest.approx(0.4))


def test_masks_zero_the_weights_and_stay_zero_through_retraining(mlp, mnist_small):
    """Test whether the prune re-parametrisation keeps pruned weights exactly 0 while the
    other weights train, and whether removing it leaves plain zeros."""
    trainset, _ = mnist_small
    mask = pruning.magnitude_mask(mlp.fc1.weight, 0.5)
    before = mlp.fc1.weight.detach().clone()
    pruning.apply_mask(mlp.fc1, mask)
    assert hasattr(mlp.fc1, "weight_orig") and bool((mlp.fc1.weight[~mask] == 0).all())
    train.fit(mlp, trainset, FAST, device="cpu", quiet=True)
    assert bool((mlp.fc1.weight[~mask] == 0).all())
    assert not torch.equal(mlp.fc1.weight[mask], before[mask])  # the rest did train
    pruning.remove_reparametrisation(mlp.fc1)
    assert "fc1.weight_orig" not in mlp.state_dict()
    assert bool((mlp.state_dict()["fc1.weight"][~mask] == 0).all())


def test_region_pruning_records_what_its_masks_say(mlp, mnist_small):
    """Test whether the loop's masks shrink, zero the weights, honour the rates, and whether
    each record's sparsity and shares are those of its mask; the input model is untouched."""
    trainset, test = mnist_small
    original = {k: v.clone() for k, v in mlp.state_dict().items()}
    result = pruning.region_pruning(mlp, trainset, test, rounds=2, retrain_epochs=1,
                                    recipe=FAST, device="cpu")
    assert all(torch.equal(v, mlp.state_dict()[k]) for k, v in original.items())
    assert [r.round for r in result.rounds] == [0, 1, 2]
    assert result.rounds[0].weights_pruned == 784 * 50
    for i, (record, mask, weight) in enumerate(zip(result.rounds, result.masks,
                                                   result.weights, strict=True)):
        assert bool((weight[~mask] == 0).all())
        assert record.sparsity == pytest.approx(1 - mask.float().mean().item())
        assert (record.over_90, record.at_most_40) == pruning.neuron_shares(mask.flatten(1))
        assert torch.equal(record.pruned_fraction, pruning.pruned_fraction(mask))
        if i:
            assert not (mask & ~result.masks[i - 1]).any()
            assert record.regions_pruned == round(0.4 * record.regions)
            assert record.weights_pruned == int((result.masks[i - 1] & ~mask).sum())
    final = result.model.fc1.weight.detach().view(-1, 28, 28)
    assert torch.equal(final == 0, ~result.masks[-1])
    assert "fc1.weight_orig" not in result.model.state_dict()


def test_ablations_reach_the_same_sparsity(mlp, mnist_small):
    """Test whether random and magnitude pruning follow the region run's schedule."""
    trainset, test = mnist_small
    knobs = {"rounds": 2, "retrain_epochs": 1, "recipe": FAST, "device": "cpu"}
    region = pruning.region_pruning(mlp, trainset, test, **knobs)
    schedule = [r.weights_pruned for r in region.rounds]
    for criterion in ("random", "magnitude"):
        other = pruning.region_pruning(mlp, trainset, test, criterion=criterion,
                                       schedule=schedule, **knobs)
        assert [r.sparsity for r in other.rounds] == pytest.approx(
            [r.sparsity for r in region.rounds])
    with pytest.raises(ValueError, match="needs schedule"):
        pruning.region_pruning(mlp, trainset, test, criterion="random", **knobs)
    with pytest.raises(ValueError, match="criterion must be"):
        pruning.region_pruning(mlp, trainset, test, criterion="largest", **knobs)


def test_class_importance_is_the_mean_input_gradient(mlp, mnist_small):
    """Test whether I_c = sum_j e_cj (M * W)_j equals the mean input gradient of logit c over
    the class's images (plain autograd), is 0 where every neuron is pruned, and leaves no
    hook behind."""
    _, test = mnist_small
    mask = pruning.magnitude_mask(mlp.fc1.weight, 0.5)
    mask.view(-1, 28, 28)[:, :3] = False  # the top 3 rows are pruned in every neuron
    pruning.apply_mask(mlp.fc1, mask)
    pruning.remove_reparametrisation(mlp.fc1)
    maps = pruning.class_importance(mlp, test.images, test.labels)
    assert not mlp.fc1._forward_hooks and all(p.grad is None for p in mlp.parameters())
    assert maps.shape == (10, 28, 28) and bool((maps[:, :3] == 0).all())
    for c in (0, 7):
        x = test.images[test.labels == c].clone().requires_grad_(True)
        mlp(x)[:, c].sum().backward()
        assert torch.allclose(maps[c], x.grad.mean(0)[0], atol=1e-6)


def test_committed_results_agree_with_the_committed_checkpoint(monkeypatch, tmp_path):
    """Test whether data/results/pruning_mnist.json is what mlp_mnist_pruned measures on the
    committed (full) MNIST test set: accuracy, sparsity and shares; and the paper's values."""
    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path))  # the committed samples
    test = data.load("mnist", "test", verbose=False)
    assert test.full
    record = pruning.read_results()
    for key in ("accuracy_before", "accuracy_after", "neurons_over_90_pruned",
                "neurons_at_most_40_pruned", "rounds", "weight_rate", "region_rate"):
        assert key in record, key
        assert key in record["paper"] or key == "rounds", key  # the paper gives no count
    model = models.load_pretrained("mlp_mnist_pruned")
    assert train.evaluate(model, test, device="cpu") == pytest.approx(
        record["accuracy_after"], abs=1e-4)
    assert train.evaluate(models.load_pretrained("mlp_mnist"), test, device="cpu") == \
        pytest.approx(record["accuracy_before"], abs=1e-4)
    mask = model.fc1.weight.detach() != 0
    over, at_most = pruning.neuron_shares(mask)
    assert over == pytest.approx(record["neurons_over_90_pruned"], abs=1e-4)
    assert at_most == pytest.approx(record["neurons_at_most_40_pruned"], abs=1e-4)
    assert 1 - mask.float().mean().item() == pytest.approx(record["sparsity"], abs=1e-6)
    assert record["regions"]["per_round"][-1]["pruned_fraction"] == pytest.approx(
        pruning.pruned_fraction(mask).tolist(), abs=1e-4)
    assert record["paper"]["accuracy_before"] == 0.945


def test_region_pruning_stops_once_the_share_is_reached(mlp, mnist_small):
    """Test whether ``until_over_90`` ends the loop after the first round that reaches it."""
    trainset, test = mnist_small
    result = pruning.region_pruning(mlp, trainset, test, rounds=3, retrain_epochs=1,
                                    recipe=FAST, device="cpu", until_over_90=0.0)
    assert len(result.rounds) == 2 and len(result.masks) == 2
