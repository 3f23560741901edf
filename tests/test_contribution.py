"""Filter contribution (paper 1, section 3): the decomposition adds up, the tally counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xai_helpers import models
from xai_helpers.contribution import filter_contribution, rank_tally, synthesize_inputs


def _hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_shared_conv2_really_has_three_filters_applied_to_each_map():
    model = models.tiny_cnn(3)
    conv2 = model.conv2
    assert conv2.weight.shape == (3, 1, 3, 3) and conv2.bias.shape == (3,)
    assert sum(p.numel() for p in conv2.parameters()) == 3 * (9 + 1)
    x = torch.rand(2, 3, 14, 14)
    out = conv2(x)
    assert out.shape == (2, 9, 14, 14)
    for i in range(3):
        for j in range(3):  # map 3i + j = conv1 map i convolved with conv2 filter j
            alone = F.conv2d(x[:, i:i + 1], conv2.weight[j:j + 1], conv2.bias[j:j + 1], padding=1)
            assert torch.allclose(out[:, 3 * i + j], alone[:, 0], atol=1e-6)
    assert torch.allclose(conv2.as_conv2d()(x), out, atol=1e-6)


def test_parameter_counts():
    assert models.count_parameters(models.build("tiny_cnn_mnist")) == 4_528
    # conv1 3*(25+1) + conv2 3*(9+1) + Affine 9*49*10 + 10
    assert models.count_parameters(models.tiny_cnn(6, 16)) == 6 * 26 + 16 * 10 + 96 * 49 * 10 + 10


@pytest.mark.parametrize("target", [None, 3, "labels"])
def test_contributions_plus_bias_equal_the_logit(target):
    model = models.tiny_cnn(3).eval()
    x = torch.rand(5, 1, 28, 28)
    labels = torch.tensor([0, 1, 2, 3, 4])
    result = filter_contribution(model, x, labels if target == "labels" else target)
    logits = model(x).detach()
    expected = {None: logits.argmax(1), 3: torch.full((5,), 3), "labels": labels}[target]
    assert torch.equal(result.target, expected)
    total = result.contributions.sum(1) + result.bias
    assert torch.allclose(total, logits[torch.arange(5), expected], atol=1e-5)
    assert torch.allclose(result.all_classes.sum(2) + model.fc.bias.detach(), logits, atol=1e-5)
    assert result.maps.shape == (5, 9, 7, 7) and _hooks(model) == 0


def test_contribution_is_weight_times_map_summed_over_positions():
    model = models.tiny_cnn(2).eval()
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.weight.view(10, 4, 7, 7)[7, 2, 3, 4] = 2.0  # class 7 reads map 2 at (3, 4)
    x = torch.rand(3, 1, 28, 28)
    result = filter_contribution(model, x, 7)
    assert torch.allclose(result.contributions[:, 2], 2.0 * result.maps[:, 2, 3, 4])
    assert (result.contributions[:, [0, 1, 3]] == 0).all()


def test_wrong_layers_give_clear_errors():
    model = models.tiny_cnn(3)
    with pytest.raises(ValueError, match="is a ReLU, not the Affine"):
        filter_contribution(model, torch.rand(1, 1, 28, 28), layer="pool2", fc="relu2")
    with pytest.raises(ValueError, match="is 'pool1' the layer just before 'fc'"):
        filter_contribution(model, torch.rand(1, 1, 28, 28), layer="pool1")
    with pytest.raises(ValueError, match="has no layer 'affine'"):
        filter_contribution(model, torch.rand(1, 1, 28, 28), fc="affine")


def test_tally_counts_ranks_per_class_and_flags_dominance():
    # class 0: map 4 always first (far ahead), map 1 second; class 1: maps 2 and 5 close
    contributions = torch.tensor([
        [0.0, 1.0, 0.0, 0.0, 9.0, 0.0],
        [0.0, 2.0, 0.0, 0.0, 8.0, 0.0],
        [0.0, 0.0, 3.0, 0.0, 0.0, 2.5],
        [0.0, 0.0, 2.0, 0.0, 0.0, 2.5],
        [0.0, 0.0, 3.0, 0.0, 0.0, 2.0],
    ])
    labels = torch.tensor([0, 0, 1, 1, 1])
    tally = rank_tally(contributions, labels, num_classes=2)
    assert tally.rank1.tolist() == [[0, 0, 0, 0, 2, 0], [0, 0, 2, 0, 0, 1]]
    assert tally.rank2.tolist() == [[0, 2, 0, 0, 0, 0], [0, 0, 1, 0, 0, 2]]
    assert tally.first == [4, 2] and tally.second == [1, 5]
    assert tally.n_images.tolist() == [2, 3]
    assert torch.allclose(tally.mean[1, 5], torch.tensor(7.0 / 3))
    assert tally.dominant == [True, False]  # 8.5 >= 2 * 1.5; 2.67 < 2 * 2.33


def test_tally_on_a_hand_built_model_with_a_known_dominant_map():
    model = models.tiny_cnn(2).eval()
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.weight.view(10, 4, 7, 7)[:, 3] = 1.0  # every class reads only map 3 ...
        model.fc.weight.view(10, 4, 7, 7)[:, 1] = 0.01  # ... and a little of map 1
        model.conv2.bias.fill_(1.0)  # all maps positive, so map 3 > map 1 > 0 = maps 0, 2
    x = torch.rand(20, 1, 28, 28)
    labels = torch.arange(20) % 10
    tally = rank_tally(filter_contribution(model, x, labels).contributions, labels)
    assert tally.first == [3] * 10 and tally.second == [1] * 10
    assert tally.rank1[:, 3].tolist() == [2] * 10 and all(tally.dominant)


def test_synthesized_inputs_raise_their_own_contribution_and_leave_the_model_as_it_was():
    model = models.tiny_cnn(2).train()
    flags = [p.requires_grad for p in model.parameters()]
    images = synthesize_inputs(model, 4, steps=40, lr=0.1)
    assert images.shape == (4, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert _hooks(model) == 0
    start = synthesize_inputs(model, 4, steps=0)  # the starting point of the ascent
    plain = synthesize_inputs(model, 4, steps=40, lr=0.1, l2=0.0, tv=0.0)
    gained = filter_contribution(model, plain, 4).contributions.diagonal()
    before = filter_contribution(model, start, 4).contributions.diagonal()
    assert (gained >= before).all() and (gained > before).any()
