"""Per-layer contribution-ratio rules of CAV (paper 3, seed 003, sections 3.1-3.2).

Kakishita, Hattori (Hitachi R&D), "Classification Reasons Visualization of Deep Neural Network
using Model Inverse Analysis" (Deep Neural Network のモデル逆解析による識別根拠可視化技術).
The paper defines, for each kind of layer with inputs ``x_i`` and outputs ``y_j``, the ratio
``beta_{x_i}^{y_j}`` of output ``y_j`` that comes from input ``x_i``; chaining (Eq. 6)

    beta_{x_i}^p = sum_j beta_{y_j}^p * beta_{x_i}^{y_j}

walks the ratios of the score ``p`` back through the layer. A *rule* does exactly that step:

    rule(module, inputs, output, ratios) -> (input ratios, bias share)

``inputs``/``output`` are the layer's recorded tensors (batch first), ``ratios`` the ratios of
its output units (shape of ``output``), the result the ratios of its input units (shape of
``inputs``) and, for a layer with a constant term (a bias: the paper's constant input 1.0), the
ratio that term absorbs, per image (N,), else ``None``.

Division by zero: an output ``y_j = 0`` passes nothing back (``0 / 0 := 0``). Its ratio is 0
anyway (every ratio coming from the layers above is a multiple of ``y_j``) unless an
activation with ``f(0) != 0`` (sigmoid) reads it; exact zeros are common only after ReLU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .models import Normalize, SharedConv2d

__all__ = ["Rule", "RULES", "register_rule", "rule_for", "bias_term", "divide", "PIECEWISE_LINEAR",
           "activation_rule", "reshape_rule", "linear_rule", "conv_rule", "batchnorm_rule",
           "max_pool_rule", "linear_map_rule", "affine_rule", "normalize_rule",
           "shared_conv_rule"]

Rule = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor],
                tuple[torch.Tensor, torch.Tensor | None]]


def divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a / b`` with ``0 / 0 := 0`` (and anything / 0 := 0)."""
    zero = b == 0
    return torch.where(zero, torch.zeros_like(a), a / torch.where(zero, torch.ones_like(b), b))


def _vjp(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
         s: torch.Tensor) -> torch.Tensor:
    """``J_f(x)^T s`` for a linear ``f``: the sum over outputs j of ``w_ji s_j`` for each i."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        return torch.autograd.grad(f(x), x, s)[0]


def _bias_share(s: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    """``sum_j R_j b_j / y_j`` per image: the ratio of the constant input 1.0 (Eq. 3)."""
    return None if bias is None else (s * bias).flatten(1).sum(1)


def bias_term(module: nn.Module) -> torch.Tensor | None:
    """The constant term ``b`` of an affine layer, broadcastable to its output (N x C x H x W
    or N x F), or ``None``: the weight of the paper's constant input 1.0 (section 3.1)."""
    if isinstance(module, nn.Linear):
        return module.bias
    if isinstance(module, nn.Conv2d) and module.bias is not None:
        return module.bias.view(-1, 1, 1)
    if isinstance(module, SharedConv2d):
        return module.bias.repeat(module.in_maps).view(-1, 1, 1)
    if isinstance(module, nn.BatchNorm2d):
        scale, shift = _batchnorm_affine(module)
        return shift.view(-1, 1, 1)
    if isinstance(module, Normalize):
        return (-module.mean / module.std)[0]
    return None


def activation_rule(module, inputs, output, ratios):
    """Activation layer (ReLU, tanh, sigmoid, ...), paper 3 Eq. 7: one-to-one, so
    ``beta_{x_i}^{y_i} = 1``: each input unit takes its output unit's ratio unchanged."""
    return ratios.reshape(inputs.shape), None


def reshape_rule(module, inputs, output, ratios):
    """Flatten, Dropout (eval), Identity: units are only moved, each keeps its ratio."""
    return ratios.reshape(inputs.shape), None


def linear_rule(module: nn.Linear, inputs, output, ratios):
    """Fully connected layer, paper 3 Eq. 4-6: ``R_i = sum_j R_j x_i w_ji / y_j``.

    Written as ``s = R / y``, ``R_in = x * (s @ W)``; the bias is the weight of a constant
    input 1.0, its share ``sum_j R_j b_j / y_j``.
    """
    s = divide(ratios, output)
    return inputs * (s @ module.weight), _bias_share(s, bias_term(module))


def conv_rule(module: nn.Conv2d, inputs, output, ratios):
    """Convolution, paper 3 Eq. 9: a fully connected layer over each receptive field,
    ``R_i = sum_j R_j x_i w_ji / y_j``; ``sum_j w_ji s_j`` is the transposed convolution of
    ``s = R / y``, taken here by autograd of the bias-free convolution."""
    s = divide(ratios, output)
    c = _vjp(lambda x: module._conv_forward(x, module.weight, None), inputs, s)
    return inputs * c, _bias_share(s, bias_term(module))


def shared_conv_rule(module: SharedConv2d, inputs, output, ratios):
    """Paper 1's shared convolution: Eq. 9 on its equivalent ``nn.Conv2d``."""
    return conv_rule(module.as_conv2d().to(inputs), inputs, output, ratios)


def _batchnorm_affine(module: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    if module.training or module.running_mean is None:
        raise ValueError("a BatchNorm2d is an affine layer only in eval mode with running "
                         "statistics (track_running_stats=True)")
    scale = torch.rsqrt(module.running_var + module.eps)
    if module.weight is not None:
        scale = scale * module.weight
    shift = -module.running_mean * scale
    if module.bias is not None:
        shift = shift + module.bias
    return scale, shift


def batchnorm_rule(module: nn.BatchNorm2d, inputs, output, ratios):
    """BatchNorm2d in eval mode, ``y = a x + b`` per channel: Eq. 4 with one input per output,
    ``R_in = R x a / y``, and the shift ``b`` as the bias (constant input 1.0)."""
    scale, shift = _batchnorm_affine(module)
    s = divide(ratios, output)
    return inputs * s * scale.view(-1, 1, 1), _bias_share(s, shift.view(-1, 1, 1))


def normalize_rule(module: Normalize, inputs, output, ratios):
    """The course's ``Normalize`` layer, ``y = x / std - mean / std``: as batch norm."""
    s = divide(ratios, output)
    return inputs * s / module.std, _bias_share(s, bias_term(module))


def max_pool_rule(module: nn.MaxPool2d, inputs, output, ratios):
    """Max pooling, paper 3 Eq. 7-8: ratio 1.0 to the arg-max input of each window, 0 to the
    rest; overlapping windows add up. Ties go to the index PyTorch's max pooling picks."""
    _, index = F.max_pool2d(inputs, module.kernel_size, module.stride, module.padding,
                            module.dilation, module.ceil_mode, return_indices=True)
    r = torch.zeros_like(inputs).flatten(2)
    r.scatter_add_(2, index.flatten(2), ratios.flatten(2))
    return r.view_as(inputs), None


def linear_map_rule(module, inputs, output, ratios):
    """Any bias-free linear layer (average pooling, adaptive average pooling, also when it
    replicates a small map): Eq. 4 with the weights ``w_ji = dy_j / dx_i`` taken by autograd,
    ``R_in = x * J^T (R / y)``."""
    return inputs * _vjp(module, inputs, divide(ratios, output)), None


def affine_rule(module, inputs, output, ratios):
    """Any affine layer ``y = L(x) + b`` (register it for your own): Eq. 4 with ``b = f(0)``
    as the bias and ``L``'s weights by autograd. Costs one more forward of the layer."""
    s = divide(ratios, output)
    bias = module(torch.zeros_like(inputs))
    share = _bias_share(s, bias) if bool((bias != 0).any()) else None
    return inputs * _vjp(module, inputs, s), share


RULES: dict[type, Rule] = {
    nn.Linear: linear_rule, nn.Conv2d: conv_rule, nn.BatchNorm2d: batchnorm_rule,
    nn.MaxPool2d: max_pool_rule, nn.AvgPool2d: linear_map_rule,
    nn.AdaptiveAvgPool2d: linear_map_rule, nn.Flatten: reshape_rule,
    nn.Dropout: reshape_rule, nn.Identity: reshape_rule, Normalize: normalize_rule,
    SharedConv2d: shared_conv_rule,
    **{kind: activation_rule for kind in (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU,
                                          nn.GELU, nn.SiLU, nn.Softplus)},
}

# Layers where the fast path (activation x gradient / score) equals the rules above: affine
# layers, max pooling, and activations with f(x) = x f'(x) (ReLU, leaky ReLU).
PIECEWISE_LINEAR: tuple[type, ...] = (
    nn.Linear, nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
    nn.Flatten, nn.Dropout, nn.Identity, nn.ReLU, nn.LeakyReLU, Normalize, SharedConv2d)


def register_rule(layer_type: type, rule: Rule) -> None:
    """Teach CAV a new layer type (paper 3, section 3.1: "any layer works once its rule is
    defined"). ``rule(module, inputs, output, ratios) -> (input ratios, bias share or None)``;
    subclasses of ``layer_type`` use it too unless they have their own."""
    if not (isinstance(layer_type, type) and issubclass(layer_type, nn.Module)):
        raise TypeError(f"layer_type must be an nn.Module subclass, got {layer_type!r}")
    if not callable(rule):
        raise TypeError(f"rule must be callable, got {rule!r}")
    RULES[layer_type] = rule


def rule_for(module: nn.Module) -> Rule | None:
    """The rule of ``module``'s type, or of its nearest registered base class, or ``None``."""
    for kind in type(module).__mro__:
        if kind in RULES:
            return RULES[kind]
    return None
