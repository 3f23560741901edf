"""Tests of CAV contribution ratios (paper 3, seed 003, Eq. 1-9): rules by hand, the fast path
against the paper's walk, conservation, captum's LRP, hooks and side effects."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from captum.attr import LRP, LayerLRP
from captum.attr._utils.lrp_rules import EpsilonRule
from torch import nn

from xai_helpers import cav, cav_rules, models
from xai_helpers.cav import INPUT, channel_map, contribution_ratio, explain

D = torch.float64
VGG_POOLS = ["features.4", "features.9", "features.16", "features.23", "features.30"]


pytestmark = pytest.mark.usefixtures("one_thread")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-300))


def randomize_batchnorm(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics and affine parameters, as after training."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1, 0.5)
                m.bias.normal_(0, 0.5)
    return model


def conv_bn_net(act=nn.ReLU) -> nn.Sequential:
    """Every rule of the issue: conv, BN, activation, max/avg/adaptive pooling, a nested
    Sequential, flatten, dropout, linear; float64, 3 x 12 x 12 inputs, 5 classes."""
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), act(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6), act()), nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d((3, 3)), nn.Flatten(), nn.Dropout(0.5),
        nn.Linear(54, 10), act(), nn.Linear(10, 5))
    return randomize_batchnorm(net.to(D))


class CaptumNet(nn.Module):
    """Layers captum's LRP supports, each its own instance, flatten as a function (VGG-like)."""

    def __init__(self, bias: bool = True, act=nn.ReLU):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, bias=bias), nn.BatchNorm2d(4), act(), nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, bias=bias), act(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d((3, 3)))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(54, 10, bias=bias), act(),
                                        nn.Linear(10, 5, bias=bias))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def all_layers(model: nn.Module) -> list[str]:
    return [n for n, _ in model.named_modules() if n] + [INPUT]


def images(n=3, size=12):
    return torch.rand(n, 3, size, size, dtype=D)


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
               for m in model.modules())


# ------------------------------------------------------------ the paper's toy networks by hand

def test_one_affine_layer_ratios_are_x_times_w_over_p():
    """Eq. 1-3: four inputs, one output: beta_i = x_i w_i / p; the bias is a constant input 1."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 1)).to(D)
    w, b = torch.tensor([0.5, -0.25, 1.0, 0.25], dtype=D), 0.5
    with torch.no_grad():
        model[1].weight.copy_(w)
        model[1].bias.fill_(b)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=D).view(1, 4, 1, 1)
    p = float((x.flatten() * w).sum() + b)  # 4.5
    for method in cav.METHODS:
        result = contribution_ratio(model, x, 0, [INPUT], method=method)
        expected = (x.flatten() * w / p).view(1, 4, 1, 1)
        torch.testing.assert_close(result.ratios[INPUT], expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(result.biases["1"], torch.tensor([b / p], dtype=D))
        assert result.scores.item() == pytest.approx(p)
        torch.testing.assert_close(result.total(INPUT), torch.ones(1, dtype=D))


def test_two_affine_layers_follow_the_eq4_to_6_chain():
    """Eq. 4-6: beta_x^p = sum_j beta_{y_j}^p beta_{x_i}^{y_j}, written out by hand."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3, 4), nn.Linear(4, 1)).to(D)
    x = torch.tensor([[0.3, -1.2, 2.0]], dtype=D)
    w0, b0, w1, b1 = model[1].weight, model[1].bias, model[2].weight[0], model[2].bias[0]
    with torch.no_grad():
        y = w0 @ x[0] + b0
        p = w1 @ y + b1
        beta_y_p = y * w1 / p  # Eq. 5
        beta_x_y = x[0][None, :] * w0 / y[:, None]  # Eq. 4, rows j, columns i
        beta_x_p = (beta_y_p[:, None] * beta_x_y).sum(0)  # Eq. 6
    for method in cav.METHODS:
        ratios = explain(model, x.view(1, 3, 1, 1), 0, ["1", INPUT], method=method)
        torch.testing.assert_close(ratios["1"][0], beta_y_p, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ratios[INPUT].flatten(), beta_x_p, rtol=1e-10, atol=1e-12)


def test_conv_rule_is_eq9_over_each_receptive_field():
    """Eq. 9: R_i = sum_j R_j x_i w_ji / y_j, looping over every output and its window."""
    conv = nn.Conv2d(2, 3, 2, stride=1, padding=1).to(D).requires_grad_(False)
    x = torch.randn(1, 2, 3, 3, dtype=D)
    y = conv(x)
    r_out = torch.randn_like(y)
    r_in, share = cav_rules.conv_rule(conv, x, y, r_out)
    padded = nn.functional.pad(x, (1, 1, 1, 1))
    expected, bias = torch.zeros_like(padded), 0.0
    for j in range(3):
        for a in range(y.shape[2]):
            for b in range(y.shape[3]):
                window = padded[0, :, a:a + 2, b:b + 2]
                expected[0, :, a:a + 2, b:b + 2] += (
                    r_out[0, j, a, b] * window * conv.weight[j] / y[0, j, a, b])
                bias += float(r_out[0, j, a, b] * conv.bias[j] / y[0, j, a, b])
    torch.testing.assert_close(r_in, expected[:, :, 1:-1, 1:-1], rtol=1e-10, atol=1e-10)
    assert share.item() == pytest.approx(bias, rel=1e-10)


def test_max_pool_rule_gives_ratio_one_to_each_windows_argmax():
    """Eq. 7-8: each output's ratio goes to its window's maximum; overlapping windows add."""
    x = torch.tensor([[1.0, 5.0, 2.0, 0.0],
                      [3.0, 2.0, 1.0, 4.0],
                      [0.0, 1.0, 9.0, 2.0],
                      [7.0, 1.0, 3.0, 3.5]], dtype=D).view(1, 1, 4, 4)
    r_out = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=D).view(1, 1, 2, 2)
    pool = nn.MaxPool2d(2)
    r_in, share = cav_rules.max_pool_rule(pool, x, pool(x), r_out)
    expected = torch.zeros(4, 4, dtype=D)
    expected[0, 1], expected[1, 3], expected[3, 0], expected[2, 2] = 0.1, 0.2, 0.3, 0.4
    torch.testing.assert_close(r_in[0, 0], expected)
    assert share is None
    overlapping = nn.MaxPool2d(3, stride=1)  # 9 is the maximum of all four windows
    r_in, _ = cav_rules.max_pool_rule(overlapping, x, overlapping(x), r_out)
    assert r_in[0, 0, 2, 2].item() == pytest.approx(1.0) and r_in.sum().item() == pytest.approx(1)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.Tanh(), nn.Sigmoid()])
def test_activation_rule_passes_ratios_unchanged(act):
    """Eq. 7: an activation is one-to-one, ratio 1.0 to its own input."""
    x = torch.randn(2, 3, 4, 4, dtype=D)
    r_out = torch.randn_like(x)
    r_in, share = cav_rules.activation_rule(act, x, act(x), r_out)
    assert torch.equal(r_in, r_out) and share is None


def test_batchnorm_rule_is_an_affine_layer_with_its_shift_as_bias():
    """BN in eval: y = a x + b per channel; R_in = R a x / y, bias share sum R b / y."""
    bn = randomize_batchnorm(nn.BatchNorm2d(3).to(D)).eval()
    x = torch.randn(2, 3, 4, 4, dtype=D)
    y = bn(x).detach()
    r_out = torch.randn_like(y)
    a = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().view(1, 3, 1, 1)
    b = bn.bias.detach().view(1, 3, 1, 1) - bn.running_mean.view(1, 3, 1, 1) * a
    r_in, share = cav_rules.batchnorm_rule(bn, x, y, r_out)
    torch.testing.assert_close(r_in, r_out * a * x / y)
    torch.testing.assert_close(share, (r_out * b / y).sum((1, 2, 3)))


# -------------------------------------------------------------- fast path == the paper's walk

@pytest.mark.parametrize("build", [
    conv_bn_net,
    lambda: nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(2 * 6 * 6, 3)).to(D),
    lambda: nn.Sequential(nn.Sequential(nn.Sequential(nn.Conv2d(3, 5, 3), nn.LeakyReLU(0.1)),
                                        nn.MaxPool2d(3, stride=2, padding=1)),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4)).to(D),
], ids=["conv_bn_net", "tiny", "nested"])
def test_fast_path_equals_reference_walk_at_every_layer(build):
    """Piecewise-linear nets: activation x gradient / score == Eq. 4-9 (rel. error <= 1e-4)."""
    model = build()
    layers, x = all_layers(model), images()
    fast = explain(model, x, None, layers)
    reference = explain(model, x, None, layers, method="reference")
    for name in layers:
        assert fast[name].shape == reference[name].shape
        assert rel_err(fast[name], reference[name]) <= 1e-4, name


def test_fast_path_equals_reference_walk_on_the_course_lenet():
    """The course's Normalize layer and paper 1's shared convolution have rules too."""
    for model in (models.lenet_mnist(), models.tiny_cnn(3)):
        x = torch.rand(2, 1, 28, 28)
        layers = all_layers(model)
        fast = contribution_ratio(model, x, [3, 7], layers)
        reference = contribution_ratio(model, x, [3, 7], layers, method="reference")
        for name in layers:
            assert rel_err(fast.ratios[name], reference.ratios[name]) <= 1e-4, name
        for name, share in reference.biases.items():
            torch.testing.assert_close(fast.biases[name], share, rtol=1e-4, atol=1e-5)


def test_ratios_of_a_container_are_those_of_its_last_layer():
    model = conv_bn_net()
    for method in cav.METHODS:
        ratios = explain(model, images(), 2, ["4", "4.2"], method=method)
        torch.testing.assert_close(ratios["4"], ratios["4.2"], rtol=0, atol=0)


def test_tanh_network_fast_path_differs_from_eq7_but_relu_agrees():
    """Eq. 7 passes ratios through tanh unchanged; the gradient does not (warned)."""
    x = images()
    tanh = conv_bn_net(nn.Tanh)
    with pytest.warns(UserWarning, match="not piecewise linear.*Tanh"):
        fast = explain(tanh, x, 1, ["2", INPUT])
    reference = explain(tanh, x, 1, ["2", INPUT], method="reference")
    assert rel_err(fast[INPUT], reference[INPUT]) > 1e-2
    relu = conv_bn_net(nn.ReLU)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = explain(relu, x, 1, ["2", INPUT])
    reference = explain(relu, x, 1, ["2", INPUT], method="reference")
    assert rel_err(fast[INPUT], reference[INPUT]) <= 1e-4


# ----------------------------------------------------------------------------- conservation

@pytest.mark.parametrize("method", cav.METHODS)
def test_ratios_plus_later_biases_sum_to_one(method):
    """Conservation, several layers of a conv net with BN and biases, per image."""
    model = conv_bn_net()
    layers = ["0", "1", "3", "4.1", "6", "9", "10", INPUT]
    result = contribution_ratio(model, images(4), [0, 1, 2, 3], layers, method=method)
    assert set(result.biases) == {"0", "1", "4.0", "4.1", "9", "11"}
    for name in layers:
        torch.testing.assert_close(result.total(name), torch.ones(4, dtype=D))
    assert not torch.allclose(result.bias_after("0"), torch.zeros(4, dtype=D))


@pytest.fixture(scope="module")
def vgg16():
    """torchvision's VGG-16 structure, random weights, non-zero biases (its init zeroes them)."""
    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None)
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.normal_(0, 0.05)
    return model


@pytest.mark.parametrize("size", [32, 64])
def test_vgg16_fast_path_conserves_and_equals_reference_walk(vgg16, size):
    """VGG-16: torch.flatten in its forward, ReLU(inplace=True), adaptive pooling of a 1 x 1
    (32 px) or 2 x 2 (64 px) map to 7 x 7; float32, so rel. error <= 1e-4 and sums 1 +- 1e-5."""
    x = torch.rand(1, 3, size, size)
    layers = [*VGG_POOLS, "avgpool", "classifier.0", INPUT]
    fast = contribution_ratio(vgg16, x, None, layers)
    reference = contribution_ratio(vgg16, x, None, layers, method="reference")
    assert fast.ratios["features.30"].shape == (1, 512, size // 32, size // 32)
    for name in layers:
        assert rel_err(fast.ratios[name], reference.ratios[name]) <= 1e-4, name
        for result in (fast, reference):
            assert result.total(name).item() == pytest.approx(1.0, abs=1e-5)
    assert abs(fast.bias_after("features.4").item()) > 0.1  # the biases matter here
    assert vgg16.features[1].inplace and no_hooks(vgg16)


# ------------------------------------------------------------------------- captum's LRP

def with_epsilon_rules(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if next(m.children(), None) is None and not isinstance(m, (nn.ReLU, nn.Tanh,
                                                                    nn.Dropout)):
            m.rule = EpsilonRule(epsilon=1e-9)
    return model


@pytest.mark.parametrize("bias", [True, False])
def test_captum_lrp_epsilon_equals_ratios_times_score(bias):
    """captum's LRP-epsilon (epsilon -> 0) = CAV ratios x score, at the input and at a layer;
    biases absorb relevance in both, so the input sums to the score only without biases."""
    model = randomize_batchnorm(CaptumNet(bias).to(D)).eval()
    if not bias:
        model.features[1].bias.data.zero_()
        model.features[1].running_mean.zero_()
    x = images(2).requires_grad_()  # captum wants it; CAV leaves it as it is
    result = contribution_ratio(model, x, 1, [INPUT, "features.3"], method="reference")
    score = result.scores.view(-1, 1, 1, 1)
    lrp = LRP(with_epsilon_rules(model)).attribute(x, target=1)
    layer = LayerLRP(with_epsilon_rules(model), model.features[3]).attribute(x, target=1)
    assert rel_err(lrp, result.ratios[INPUT] * score) <= 1e-4
    assert rel_err(layer, result.ratios["features.3"] * score) <= 1e-4
    assert rel_err(lrp, explain(model, x, 1)[INPUT] * score) <= 1e-4  # fast path too
    total = lrp.sum((1, 2, 3))
    if bias:
        torch.testing.assert_close(total, result.scores * (1 - result.bias_after(INPUT)),
                                   rtol=1e-4, atol=1e-6)
    else:
        torch.testing.assert_close(total, result.scores, rtol=1e-4, atol=1e-6)


def test_captum_lrp_passes_tanh_like_eq7_not_like_the_gradient():
    model = randomize_batchnorm(CaptumNet(act=nn.Tanh).to(D)).eval()
    x = images(2).requires_grad_()
    reference = contribution_ratio(model, x, 3, [INPUT], method="reference")
    lrp = LRP(with_epsilon_rules(model)).attribute(x, target=3)
    assert rel_err(lrp, reference.ratios[INPUT] * reference.scores.view(-1, 1, 1, 1)) <= 1e-4


# ------------------------------------------------------------------- rules for new layers

class Scale(nn.Module):
    def forward(self, x):
        return 2 * x + 1


def test_layer_without_rule_names_its_type_place_and_register_rule(monkeypatch):
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Sequential(nn.ReLU(), Scale()),
                          nn.Flatten(), nn.Linear(2 * 10 * 10, 3)).to(D)
    with pytest.raises(cav.NoRuleError, match=r"'1\.1' \(Scale\).*register_rule\(Scale, rule\)"):
        explain(model, images(), 0, [INPUT], method="reference")
    assert no_hooks(model)
    monkeypatch.setattr(cav_rules, "RULES", dict(cav_rules.RULES))  # undone after the test
    cav.register_rule(Scale, cav.affine_rule)
    x = images()
    result = contribution_ratio(model, x, 0, ["1.0", INPUT], method="reference")
    torch.testing.assert_close(result.total(INPUT), torch.ones(3, dtype=D))
    assert result.biases["1.1"].abs().min() > 0  # its "+ 1" is a bias
    with pytest.warns(UserWarning, match="Scale"):  # not known to be piecewise linear
        fast = explain(model, x, 0, ["1.0"])
    assert rel_err(fast["1.0"], result.ratios["1.0"]) <= 1e-4


def test_register_rule_accepts_only_module_types_and_callables():
    with pytest.raises(TypeError, match="nn.Module subclass"):
        cav.register_rule(int, cav.affine_rule)
    with pytest.raises(TypeError, match="callable"):
        cav.register_rule(Scale, "affine")


def test_reference_walk_rejects_a_model_that_is_not_a_chain():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 3, 3, padding=1), nn.Linear(3, 2)

        def forward(self, x):
            return self.fc((x + self.conv(x)).mean((2, 3)))

    model = Residual().to(D)
    with pytest.raises(ValueError, match="chain of modules"):
        explain(model, images(), 0, ["conv"], method="reference")
    assert explain(model, images(), 0, ["conv"])["conv"].shape == (3, 3, 12, 12)


# ------------------------------------------------------------ hooks, side effects, errors

@pytest.mark.parametrize("method", cav.METHODS)
def test_hooks_are_removed_after_many_calls_and_when_forward_raises(method):
    model = conv_bn_net()
    for _ in range(5):
        contribution_ratio(model, images(), 0, ["4", INPUT], method=method)
    assert no_hooks(model)
    with pytest.raises(RuntimeError):
        explain(model, torch.rand(1, 2, 12, 12, dtype=D), 0, ["4"], method=method)
    assert no_hooks(model)


@pytest.mark.parametrize("method", cav.METHODS)
def test_model_mode_requires_grad_and_inplace_are_restored(method):
    model = conv_bn_net()
    model[2].inplace = True
    model.train()
    model[1].eval()  # a mixed state comes back exactly
    model[0].weight.requires_grad_(False)
    before = [m.training for m in model.modules()]
    x = images()
    x_before = x.clone()
    for bad_input in (False, True):
        try:
            explain(model, x[:, :2] if bad_input else x, 0, ["2"], method=method)
        except RuntimeError:
            assert bad_input
        assert [m.training for m in model.modules()] == before
        assert not model[0].weight.requires_grad and model[0].bias.requires_grad
        assert model[2].inplace and model[0].weight.grad is None
    assert torch.equal(x, x_before) and not x.requires_grad


def test_inplace_relu_gives_the_same_ratios():
    model = conv_bn_net()
    x = images()
    plain = explain(model, x, 0, ["1", INPUT], method="reference")
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = True
    for method in cav.METHODS:
        ratios = explain(model, x, 0, ["1", INPUT], method=method)
        for name in ratios:
            assert rel_err(ratios[name], plain[name]) <= 1e-10


def test_target_per_image_equals_one_call_per_image():
    model = conv_bn_net()
    x = images(3)
    target = torch.tensor([4, 0, 2])
    together = contribution_ratio(model, x, target, ["3"])
    assert torch.equal(together.target, target)
    for i in range(3):
        alone = explain(model, x[i:i + 1], int(target[i]), ["3"])
        torch.testing.assert_close(together.ratios["3"][i:i + 1], alone["3"])
    assert torch.equal(contribution_ratio(model, x, [4, 0, 2], ["3"]).target, target)


def test_default_target_is_the_predicted_class():
    model = conv_bn_net()
    x = images()
    result = contribution_ratio(model, x, None, ["3"])
    assert torch.equal(result.target, model.eval()(x).argmax(1))


def test_channel_map_sums_ratios_over_channels():
    ratios = explain(conv_bn_net(), images(2), 0, ["3"])["3"]
    maps = channel_map(ratios)
    assert maps.shape == (2, 6, 6)
    torch.testing.assert_close(maps[1, 2, 3], ratios[1, :, 2, 3].sum())
    with pytest.raises(ValueError, match="N x C x H x W"):
        channel_map(ratios.flatten(1))


def test_bad_arguments_raise_clear_errors():
    model = conv_bn_net()
    x = images(2)
    with pytest.raises(ValueError, match=r"no layer 'conv9'.*e\.g\. '0', '1'.*'input'"):
        explain(model, x, 0, ["conv9"])
    with pytest.raises(ValueError, match="out of range.*5 classes"):
        explain(model, x, 5, ["0"])
    with pytest.raises(ValueError, match="out of range"):
        explain(model, x, [0, -1], ["0"])
    with pytest.raises(ValueError, match="N x C x H x W"):
        explain(model, x[0], 0, ["0"])
    with pytest.raises(ValueError, match=r"one class per image, shape \(2,\), got shape \(3,\)"):
        explain(model, x, [0, 1, 2], ["0"])
    with pytest.raises(ValueError, match="method"):
        explain(model, x, 0, ["0"], method="lrp")
    assert no_hooks(model)


def test_results_are_cpu_tensors_of_the_output_shape():
    model = conv_bn_net()
    result = contribution_ratio(model, images(2), 0, ["3", "9", INPUT])
    assert result.ratios["3"].shape == (2, 4, 6, 6) and result.ratios["9"].shape == (2, 10)
    tensors = [*result.ratios.values(), *result.biases.values(), result.scores, result.target]
    assert all(t.device.type == "cpu" and not t.requires_grad for t in tensors)
