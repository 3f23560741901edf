"""Tests for xai_helpers.methods and xai_helpers.class_maps: one calling convention, all classes
batched, equal to the per-image references (captum or the paper's formula)."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from xai_helpers import class_maps
from xai_helpers.gcm import GCM
from xai_helpers.methods import METHODS, applicable, attribute

CNN_METHODS = ["guided_backprop", "guided_gradcam", "gradcam", "cam", "cav", "occlusion",
               "integrated_gradients"]
GCM_METHODS = ["cwm", "ccm", "cav", "occlusion", "integrated_gradients"]
KNOBS = {"occlusion": {"window": 4, "stride": 2}}


@pytest.fixture
def gap_cnn() -> nn.Sequential:
    """A tiny CNN ending in global average pooling + linear (CAM applies), 5 classes, no
    pooling: its last features have the input's size (no upscaling)."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 4, 3, padding=1)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(4, 6, 3, padding=1)), ("relu2", nn.ReLU()),
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
        ("fc", nn.Linear(6, 5)),
    ])).eval()


@pytest.fixture
def strided_cnn(gap_cnn) -> nn.Sequential:
    """As gap_cnn with a stride-2 second convolution: 4 x 4 features, upscaled to 8 x 8."""
    gap_cnn.conv2.stride = (2, 2)
    return gap_cnn


@pytest.fixture
def small_gcm() -> GCM:
    torch.manual_seed(0)
    return GCM(10, 3).eval()


@pytest.fixture
def linear() -> nn.Sequential:
    """A bias-free linear model on 3 x 8 x 8 images (no ReLU, no convolution)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4, bias=False)).eval()


def images(n=3, size=8):
    torch.manual_seed(1)
    return torch.rand(n, 3, size, size)


def close(a, b, rel=1e-4):
    """Equal up to float32 rounding, relative to the larger map."""
    scale = max(float(a.abs().max()), float(b.abs().max()), 1e-30)
    torch.testing.assert_close(a, b, rtol=0, atol=rel * scale)


@pytest.mark.parametrize("name", CNN_METHODS)
def test_batched_class_maps_equal_per_class_calls_on_a_cnn(one_thread, strided_cnn, name):
    """All-class maps of a batch equal one call per class and one reference call per image
    and class (captum, or the formula)."""
    x, knobs = images(), KNOBS.get(name, {})
    maps = attribute(name, strided_cnn, x, **knobs)
    assert maps.shape[:2] == (3, 5) and maps.shape[-2:] == (8, 8)
    per_class = torch.stack([attribute(name, strided_cnn, x, k, **knobs)[:, 0]
                             for k in range(5)], 1)
    close(maps, per_class)
    loop = torch.stack([torch.stack([attribute(name, strided_cnn, x[i:i + 1], k,
                                               reference=True, **knobs)[0, 0]
                                     for k in range(5)]) for i in range(3)])
    close(maps, loop)
    assert float(maps.abs().max()) > 0


@pytest.mark.parametrize("name", GCM_METHODS)
def test_batched_class_maps_equal_per_class_calls_on_gcm(one_thread, small_gcm, name):
    """The same on a small GCM (8 x 8 inputs), against the repeated-batch reference."""
    x, knobs = images(2), KNOBS.get(name, {})
    maps = attribute(name, small_gcm, x, **knobs)
    close(maps, attribute(name, small_gcm, x, reference=True, **knobs))
    close(maps[:, 7], attribute(name, small_gcm, x, 7, **knobs)[:, 0])


def test_cav_at_a_hidden_layer_is_summed_over_channels_and_upscaled(strided_cnn):
    """CAV at conv2 (4 x 4): contributions summed over channels (paper 3, 3.3), upscaled."""
    x = images()
    maps = attribute("cav", strided_cnn, x, layer="conv2")
    assert maps.shape == (3, 5, 1, 8, 8)
    close(maps, attribute("cav", strided_cnn, x, layer="conv2", reference=True))


def test_map_shapes_follow_one_convention(gap_cnn, small_gcm):
    """N x T x C' x H x W: C' = C for per-element maps, 1 for per-pixel maps; T = K or 1."""
    x = images()
    assert attribute("guided_backprop", gap_cnn, x).shape == (3, 5, 3, 8, 8)
    assert attribute("cam", gap_cnn, x).shape == (3, 5, 1, 8, 8)
    assert attribute("cam", gap_cnn, x, 2).shape == (3, 1, 1, 8, 8)
    assert attribute("ccm", small_gcm, x).shape == (3, 10, 3, 8, 8)
    assert attribute("cwm", small_gcm, x, torch.tensor([0, 4, 9])).shape == (3, 1, 1, 8, 8)
    per_image = attribute("cam", gap_cnn, x, torch.tensor([0, 4, 1]))[:, 0]
    every = attribute("cam", gap_cnn, x)
    close(per_image, every[torch.arange(3), torch.tensor([0, 4, 1])])


def test_cam_mean_plus_bias_is_the_logit(gap_cnn):
    """CAM (Zhou et al. 2016): the mean of M_k over the feature map plus b_k is logit k."""
    x = images()
    maps = attribute("cam", gap_cnn, x)[:, :, 0]
    close(maps.mean((-2, -1)) + gap_cnn.fc.bias.detach(), gap_cnn(x).detach(), 1e-5)


def test_gradcam_of_a_gap_linear_model_is_relu_cam_over_the_area(gap_cnn):
    """Through GAP + linear the gradient is w_k / (h w) everywhere, so Grad-CAM =
    ReLU(CAM) / (h w)."""
    x = images()
    close(attribute("gradcam", gap_cnn, x), attribute("cam", gap_cnn, x).relu() / 64)


def test_upscaled_gradcam_keeps_its_relu(strided_cnn):
    """Bicubic upscaling of the 4 x 4 map overshoots below 0; the returned map does not."""
    import torch.nn.functional as F

    from xai_helpers.class_maps import _gradcam_coarse

    x = images()
    coarse = _gradcam_coarse(strided_cnn, x, None, "conv2")  # 4 x 4, before the upscaling
    upscaled = F.interpolate(coarse, size=(8, 8), mode="bicubic", align_corners=False)
    gradcam = attribute("gradcam", strided_cnn, x)[:, :, 0]
    assert (upscaled < 0).any() and gradcam.min() >= 0
    close(gradcam, upscaled.clamp(min=0))


def test_guided_gradcam_is_guided_backprop_times_gradcam(strided_cnn):
    x = images()
    close(attribute("guided_gradcam", strided_cnn, x),
          attribute("guided_backprop", strided_cnn, x) * attribute("gradcam", strided_cnn, x))


def test_ccm_is_cwm_times_the_image_and_its_mean_is_the_score(small_gcm):
    """Paper 2, Eq. 2-4."""
    x = images(2)
    cwm, ccm = attribute("cwm", small_gcm, x), attribute("ccm", small_gcm, x)
    close(ccm, cwm * x[:, None])
    close(ccm.mean((2, 3, 4)), small_gcm(x).detach(), 1e-5)


def test_linear_model_maps_have_closed_forms(linear):
    """On ``logits = W x``: CAV = IG = W_k * x (IG exact for a linear model), and occlusion
    of a patch drops the logit by the patch's sum of W_k * x."""
    x = images(2).double()
    net = linear.double()
    w = net[1].weight.detach().view(1, 4, 3, 8, 8)
    close(attribute("cav", net, x), w * x[:, None], 1e-12)
    close(attribute("integrated_gradients", net, x, n_steps=2), w * x[:, None], 1e-12)
    occ = attribute("occlusion", net, x, window=4, stride=4)
    patch = (w * x[:, None]).sum(2)[..., :4, :4].sum((-2, -1))  # top-left patch
    close(occ[:, :, 0, 0, 0], patch, 1e-12)
    close(occ[:, :, 0, :4, :4], patch[..., None, None].expand(-1, -1, 4, 4), 1e-12)


def test_wrong_model_raises_a_clear_error(gap_cnn, small_gcm, linear):
    """Each method says what it needs."""
    x = images()
    with pytest.raises(ValueError, match="CAM needs a model ending in global average pooling"):
        attribute("cam", small_gcm, x)
    with pytest.raises(ValueError, match="CWM and CCM need a GCM model"):
        attribute("cwm", gap_cnn, x)
    with pytest.raises(ValueError, match="needs its ReLUs as nn.ReLU modules"):
        attribute("guided_backprop", linear, x)
    with pytest.raises(ValueError, match="Grad-CAM needs a convolutional layer"):
        attribute("gradcam", linear, x)
    with pytest.raises(ValueError, match="unknown method 'lime'"):
        attribute("lime", gap_cnn, x)
    with pytest.raises(ValueError, match="targets 5 is out of range: the model has 5 classes"):
        attribute("cam", gap_cnn, x, 5)
    with pytest.raises(ValueError, match="one class per image"):
        attribute("cam", gap_cnn, x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="N x C x H x W"):
        attribute("cam", gap_cnn, x[0])
    with pytest.raises(ValueError, match="do not tile"):
        attribute("occlusion", gap_cnn, x, window=3, stride=3)
    assert set(applicable(gap_cnn)) == set(CNN_METHODS)
    assert set(applicable(small_gcm)) >= set(GCM_METHODS) and "cam" not in applicable(small_gcm)


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
               and not m._backward_pre_hooks for m in model.modules())


class Bomb(nn.Module):
    """Passes one image through and raises for a batch: attribute's class-count probe runs,
    the method's own passes fail."""

    def forward(self, x):
        if len(x) > 1:
            raise RuntimeError("boom")
        return x


@pytest.mark.parametrize("reference", [False, True])
def test_hooks_removed_and_model_restored_also_after_an_error(strided_cnn, reference):
    """No hook is left, the mode and requires_grad are restored, also when the model raises
    inside the method."""
    strided_cnn.train()
    for name in CNN_METHODS:
        attribute(name, strided_cnn, images(2), reference=reference, **KNOBS.get(name, {}))
        assert no_hooks(strided_cnn), name
    bombed = nn.Sequential(OrderedDict([("bomb", Bomb()), *strided_cnn.named_children()]))
    for name in CNN_METHODS:
        with pytest.raises(RuntimeError, match="boom"):
            attribute(name, bombed, images(2), reference=reference, **KNOBS.get(name, {}))
        assert no_hooks(bombed), name
    assert all(m.training for m in bombed.modules())
    assert all(p.requires_grad for p in bombed.parameters())


def test_every_method_cites_its_source():
    """Each registered method names its source, its visual style and documents its function."""
    for method in METHODS.values():
        assert method.cite and method.visual in ("blend", "as_is")
        doc = method.compute.__doc__
        assert doc and ("et al." in doc or "paper" in doc), method.name
    assert class_maps.UPSAMPLE == "bicubic"


def test_integrated_gradients_default_steps_meet_the_stated_completeness_tolerance():
    """class_maps.IG_STEPS: median relative gap <= 2.5%, 90th percentile <= 10% on cnn_cifar10;
    8 steps, the former default, do not meet it."""
    from xai_helpers import class_maps, data, models

    cnn = models.load_pretrained("cnn_cifar10")
    sample = data.load_samples("cifar10", "test").subset(40)
    x, classes = sample.images, sample.labels[:, None]
    gaps = {}
    for steps in (8, class_maps.IG_STEPS):
        maps = attribute("integrated_gradients", cnn, x, sample.labels, n_steps=steps)
        gaps[steps] = class_maps.completeness_gap(cnn, x, classes, maps).flatten()
    default = gaps[class_maps.IG_STEPS]
    assert default.median() <= 0.025 and default.quantile(0.9) <= 0.10, default
    assert gaps[8].median() > 0.025
