"""capture(): records activations and gradients, and never leaves a hook behind."""

from __future__ import annotations

import pytest
import torch

from xai_helpers.hooks import capture, get_layer


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())


def test_capture_records_activation_and_gradient(tiny_cnn):
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    with capture(tiny_cnn, ["1", "4"]) as store:
        scores = tiny_cnn(x)
        scores[:, 2].sum().backward()
    assert store["1"]["act"].shape == (2, 2, 8, 8)
    assert torch.equal(store["4"]["act"], scores)
    # d(score_2)/d(logits) is the one-hot vector of class 2
    assert torch.equal(store["4"]["grad"], torch.tensor([[0.0, 0, 1], [0, 0, 1]]))
    assert store["1"]["grad"].shape == (2, 2, 8, 8)
    assert _hook_count(tiny_cnn) == 0


def test_capture_removes_hooks_when_forward_raises(tiny_cnn):
    with pytest.raises(RuntimeError), capture(tiny_cnn, ["0", "1"]):
        tiny_cnn(torch.zeros(1, 2, 8, 8))  # wrong channel count
    assert _hook_count(tiny_cnn) == 0


def test_capture_in_a_loop_leaves_nothing(tiny_cnn):
    for _ in range(50):
        with capture(tiny_cnn, ["2"]) as store:
            tiny_cnn(torch.rand(1, 1, 8, 8))
    assert _hook_count(tiny_cnn) == 0 and store["2"]["act"].shape == (1, 2, 4, 4)


def test_unknown_layer_lists_the_layers(tiny_cnn):
    with pytest.raises(ValueError, match="has no layer 'conv9'; its layers are: 0, 1, 2, 3, 4"):
        with capture(tiny_cnn, ["1", "conv9"]):
            pass
    assert _hook_count(tiny_cnn) == 0
    assert get_layer(tiny_cnn, "4").out_features == 3
