"""Contribution Analysis Visualization (CAV): contribution ratios of every layer (paper 3).

Kakishita, Hattori (Hitachi R&D), "Classification Reasons Visualization of Deep Neural Network
using Model Inverse Analysis" (Deep Neural Network のモデル逆解析による識別根拠可視化技術),
seed 003, sections 3.1-3.3. The *contribution ratio* (寄与率) of a unit is the share of the
class score ``p`` that comes from it: for one fully connected unit ``p = sum_i x_i w_i`` (with
a constant input 1.0 whose weight is the bias), Eq. 1-3 give ``beta_{x_i}^p = x_i w_i / p``;
Eq. 4-6 chain this through layers, ``beta_{x_i}^p = sum_j beta_{y_j}^p beta_{x_i}^{y_j}``, and
the per-layer rules of :mod:`xai_helpers.cav_rules` (Eq. 7-9) walk it back from the score to
any layer. Negative ratios mark features that suppress the score. Section 3.3 shows a conv
layer's ratios summed over channels (:func:`channel_map`).

Two ways to compute the same numbers:

``method="reference"``
    The paper's walk, layer by layer with the registered rules, from the score down to the
    earliest requested layer. Needs a chain of modules (``nn.Sequential``, nested ones, or
    torchvision's VGG whose ``torch.flatten`` between ``avgpool`` and ``classifier`` is found
    as a reshape between recorded layers).
``method="fast"`` (default)
    ``ratio = activation * d(score)/d(activation) / score`` for all requested layers from one
    backward pass. Equal to the walk for piecewise-linear networks (Linear, Conv2d, BatchNorm2d
    in eval, ReLU, max/average pooling, ...): there Eq. 4-9 are LRP-0 relevance divided by the
    score, and LRP-0 equals activation x gradient. With tanh or sigmoid it is not: Eq. 7 passes
    ratios through unchanged, the gradient does not (a warning says so).

Conservation: the ratios of a layer's units plus those absorbed by every bias between that
layer and the score sum to 1 (:meth:`CAVResult.total`). Outputs ``y_j = 0`` pass nothing back
(``0 / 0 := 0``); an image whose target score is exactly 0 gets ratios 0. The same numbers
times the score are captum's LRP with the epsilon rule (epsilon -> 0), biases included:
captum's relevance is absorbed by the biases too, so it sums to the score only without them.

API: :func:`explain` (``{layer: ratios}``), :func:`contribution_ratio` (a :class:`CAVResult`
with the bias shares), :func:`channel_map` (the 2-D map), :func:`register_rule` (new layers).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .cav_rules import (
    PIECEWISE_LINEAR,
    RULES,
    affine_rule,
    bias_term,
    divide,
    register_rule,
    rule_for,
)
from .checks import class_indices

__all__ = ["INPUT", "CAVResult", "contribution_ratio", "explain", "channel_map", "explaining",
           "usable", "register_rule", "affine_rule", "RULES", "NoRuleError", "METHODS"]

INPUT = "input"  # pseudo layer name: the ratios of the model's input pixels
METHODS = ("fast", "reference")


class NoRuleError(TypeError):
    """A layer on the reference walk has no contribution-ratio rule."""


@dataclass(frozen=True)
class CAVResult:
    """Contribution ratios of a batch (paper 3, Eq. 3 and 6; all tensors on the CPU).

    ratios : layer name -> N x (layer output shape), the ratio of each output unit
    biases : name of each module with a bias -> (N,), the ratio its bias absorbs (the constant
        input 1.0 of Eq. 1-3)
    order : the layer and bias names in the order the forward pass finished them
    scores : (N,), the explained scores ``p``; target : (N,), their classes
    """

    ratios: dict[str, torch.Tensor]
    biases: dict[str, torch.Tensor]
    order: tuple[str, ...]
    scores: torch.Tensor
    target: torch.Tensor
    method: str

    def bias_after(self, layer: str) -> torch.Tensor:
        """(N,) ratio absorbed by all biases between ``layer``'s output and the score."""
        later = self.order[self.order.index(layer) + 1:] if layer != INPUT else self.order
        total = torch.zeros_like(self.scores)
        for name in dict.fromkeys(later):
            total = total + self.biases.get(name, 0.0)
        return total

    def total(self, layer: str) -> torch.Tensor:
        """(N,) sum of ``layer``'s ratios plus :meth:`bias_after`: 1 (conservation)."""
        return self.ratios[layer].flatten(1).sum(1) + self.bias_after(layer)


class Call(NamedTuple):
    name: str
    module: nn.Module
    inputs: tuple
    output: object


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


@contextmanager
def recording(model: nn.Module, names: Sequence[str]) -> Iterator[list[Call]]:
    """Record every call of the named modules, in the order they finish, during the forward
    passes inside the ``with`` block; the hooks are removed on exit, also after an error."""
    calls: list[Call] = []
    modules = dict(model.named_modules())
    handles = []

    def hook_for(name: str):
        def keep(module, args, out):
            calls.append(Call(name, module, args, out))
        return keep

    try:
        for name in dict.fromkeys(names):
            handles.append(modules[name].register_forward_hook(hook_for(name)))
        yield calls
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def explaining(model: nn.Module) -> Iterator[None]:
    """Eval mode, frozen parameters and no in-place layers (they would overwrite the recorded
    activations, e.g. VGG's ``ReLU(inplace=True)``), and gradients on even inside the caller's
    ``torch.no_grad()`` or ``torch.inference_mode()`` (the maps need them; see
    :func:`usable`); everything restored on exit."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    inplace = [m for m in model.modules() if getattr(m, "inplace", None) is True]
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.enable_grad())
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        for m in inplace:
            m.inplace = False
        yield
    finally:
        for m in inplace:
            m.inplace = True
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode
        stack.close()


def usable(x: torch.Tensor) -> torch.Tensor:
    """``x``, or a normal copy of it if it was made under ``torch.inference_mode()`` (such a
    tensor cannot take part in a backward pass); call inside :func:`explaining`."""
    return x.clone() if x.is_inference() else x


def _check_layers(model: nn.Module, layers: str | Sequence[str]) -> list[str]:
    layers = [layers] if isinstance(layers, str) else list(dict.fromkeys(layers))
    names = [n for n, _ in model.named_modules() if n]
    known = set(names)
    for name in layers:
        if name != INPUT and name not in known:
            some = ", ".join(repr(n) for n in names[:8])
            raise ValueError(f"model {type(model).__name__} has no layer {name!r}; layers are "
                             f"module names as in model.named_modules(), e.g. {some}"
                             f"{', ...' if len(names) > 8 else ''} ({len(names)} in all), "
                             f"or {INPUT!r} for the input pixels")
    return layers


def _targets(target, logits: torch.Tensor) -> torch.Tensor:
    n, classes = logits.shape
    if target is None:
        return logits.argmax(1)
    return class_indices(target, n, classes).to(logits.device)


def _one_per_layer(calls: list[Call], layers: list[str]) -> dict[str, Call]:
    found: dict[str, list[Call]] = {}
    for call in calls:
        found.setdefault(call.name, []).append(call)
    for name in layers:
        if len(found.get(name, [])) != 1:
            raise ValueError(f"layer {name!r} ran {len(found.get(name, []))} times in the "
                             f"forward pass; its ratios need exactly one call")
    return {name: found[name][0] for name in layers}


def _logits(output: object) -> torch.Tensor:
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        raise ValueError("the model must return class scores N x classes, got "
                         f"{getattr(output, 'shape', type(output))}")
    return output


def _fast(model, x, target, layers, biases: bool) -> CAVResult:
    """Activation x gradient / score for all layers, one backward pass (LRP-0 / score)."""
    modules = dict(model.named_modules())
    odd = sorted({type(m).__name__ for m in modules.values()
                  if _is_leaf(m) and not isinstance(m, PIECEWISE_LINEAR)})
    if odd:
        warnings.warn(f"the model has layers that are not piecewise linear ({', '.join(odd)}): "
                      "the fast path (activation x gradient / score) differs there from "
                      "paper 3's rules (Eq. 7 passes ratios through unchanged); use "
                      "method='reference' for the paper's ratios", stacklevel=4)
    hooked = [n for n in layers if n != INPUT]
    with_bias = [n for n, m in modules.items()
                 if biases and n and _is_leaf(m) and bias_term(m) is not None]
    x = x.detach().requires_grad_(True)
    with recording(model, hooked + with_bias) as calls:
        logits = _logits(model(x))
    target = _targets(target, logits)
    scores = logits[torch.arange(len(x)), target]
    own = _one_per_layer(calls, hooked)
    # (is a bias share, name, tensor): every gradient comes from the same backward pass
    wanted = [(False, n, own[n].output) for n in hooked] + [(False, INPUT, x)] * (INPUT in layers)
    wanted += [(True, c.name, c.output) for c in calls if c.name in with_bias]
    live = [i for i, w in enumerate(wanted) if w[2].requires_grad]
    grads = dict.fromkeys(range(len(wanted)))
    if live:
        found = torch.autograd.grad(scores.sum(), [wanted[i][2] for i in live],
                                    allow_unused=True)
        grads.update(zip(live, found, strict=True))
    p = scores.detach()
    ratios, shares = {}, {}
    for i, (is_bias, name, t) in enumerate(wanted):
        g = torch.zeros_like(t) if grads[i] is None else grads[i]
        if is_bias:  # sum_j R_j b_j / y_j = sum_j b_j dp/dy_j / p
            share = divide((g * bias_term(modules[name])).flatten(1).sum(1), p)
            shares[name] = shares.get(name, 0) + share
        else:  # R_i = x_i dp/dx_i / p
            ratios[name] = divide(t.detach() * g, p.view(-1, *[1] * (t.ndim - 1))).cpu()
    order = [INPUT] * (INPUT in layers) + [c.name for c in calls]
    return CAVResult({n: ratios[n] for n in layers}, {n: s.cpu() for n, s in shares.items()},
                     tuple(order), p.cpu(), target.cpu(), "fast")


def _same(a: object, b: object) -> bool:
    """``b`` is ``a`` or holds the same values (maybe reshaped, e.g. by ``torch.flatten``)."""
    if a is b:
        return True
    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape[0] == b.shape[0]
            and a.numel() == b.numel() and torch.equal(a.reshape(b.shape), b))


def _chain(x, calls: list[Call], logits) -> list[Call]:
    """The recorded leaf modules, checked to form a chain from ``x`` to the scores."""
    leaves = [c for c in calls if _is_leaf(c.module)]
    before = x
    for c in leaves:
        if len(c.inputs) != 1 or not _same(before, c.inputs[0]):
            raise ValueError(f"the reference walk needs a chain of modules, but layer "
                             f"{c.name!r} ({type(c.module).__name__}) does not read the output "
                             f"of the layer before it (a residual connection, several inputs "
                             f"or a functional operation?); use method='fast'")
        before = c.output
    if not leaves or not _same(before, logits):
        raise ValueError("the reference walk needs the scores to be the output of the last "
                         "module (no functional operation after it); use method='fast'")
    return leaves


def _rule(call: Call):
    rule = rule_for(call.module)
    if rule is None:
        kind = type(call.module).__name__
        raise NoRuleError(
            f"layer {call.name!r} ({kind}) has no contribution-ratio rule, so the reference "
            f"walk of paper 3 cannot pass it. Define one and register it: "
            f"xai_helpers.cav.register_rule({kind}, rule), where rule(module, inputs, output, "
            f"ratios) returns (input ratios, bias share per image or None); cav.affine_rule "
            f"fits any affine layer (or use method='fast')")
    return rule


@torch.no_grad()
def _reference(model, x, target, layers, biases: bool) -> CAVResult:
    """The paper's walk: Eq. 4-9 layer by layer from the score down to the requested layers
    (down to the input when the bias shares of all layers are wanted)."""
    names = [n for n, _ in model.named_modules() if n]
    with recording(model, names) as calls:
        logits = _logits(model(x))
    target = _targets(target, logits)
    rows = torch.arange(len(x))
    scores = logits[rows, target]
    leaves = _chain(x, calls, logits)
    own = _one_per_layer(calls, [n for n in layers if n != INPUT])
    at: dict[int, list[str]] = {}
    for name, call in own.items():  # a container's output is one of its leaves' outputs
        k = next((k for k in reversed(range(len(leaves))) if leaves[k].output is call.output),
                 None)
        if k is None:
            k = next((k for k in reversed(range(len(leaves)))
                      if _same(leaves[k].output, call.output)), None)
        if k is None:
            raise ValueError(f"the output of layer {name!r} is not the output of any module "
                             f"inside it (a functional operation at its end?); use "
                             f"method='fast'")
        at.setdefault(k, []).append(name)
    to_input = INPUT in layers or biases
    deepest = 0 if to_input else min(at, default=len(leaves))
    ratios: dict[str, torch.Tensor] = {}
    shares: dict[str, torch.Tensor] = {}
    r = torch.zeros_like(logits)
    r[rows, target] = divide(scores, scores)  # the score's ratio to itself: 1 (Eq. 3)
    for k in range(len(leaves) - 1, deepest - 1, -1):
        call = leaves[k]
        r = r.reshape(call.output.shape)  # a flatten between two modules (VGG)
        for name in at.get(k, []):
            ratios[name] = r.reshape(own[name].output.shape).cpu()
        if k == deepest and not to_input:
            break
        r, share = _rule(call)(call.module, call.inputs[0], call.output, r)
        if share is not None:
            shares[call.name] = shares.get(call.name, 0) + share
    if INPUT in layers:
        ratios[INPUT] = r.reshape(x.shape).cpu()
    order = [INPUT] * (INPUT in layers) + [c.name for c in calls]
    kept = [n for n in order if n in layers or n in shares]
    return CAVResult({n: ratios[n] for n in layers}, {n: s.cpu() for n, s in shares.items()},
                     tuple(kept), scores.cpu(), target.cpu(), "reference")


def contribution_ratio(model: nn.Module, inputs: torch.Tensor, target=None,
                       layers: str | Sequence[str] = (INPUT,), *,
                       method: str = "fast") -> CAVResult:
    """Contribution ratios of the units of ``layers`` and of every bias (paper 3, Eq. 1-9).

    Parameters
    ----------
    model : a classifier returning N x classes scores; left as it was (mode, requires_grad,
        in-place flags), computed on its device
    inputs : N x C x H x W images
    target : the class to explain, an int or one per image ((N,) sequence or tensor);
        ``None``: the predicted class
    layers : module names as in ``model.named_modules()`` (``"features.30"``), or ``"input"``
    method : ``"fast"`` (one backward pass; exact for piecewise-linear networks) or
        ``"reference"`` (the paper's layer-by-layer walk with the rules of ``cav_rules``)

    Returns
    -------
    CAVResult : ``ratios[layer]`` has the shape of the layer's output, batch first; for every
        image, ``result.total(layer)`` (ratios + biases after the layer) is 1.
    """
    return _run(model, inputs, target, layers, method, biases=True)


def explain(model: nn.Module, inputs: torch.Tensor, target=None,
            layers: str | Sequence[str] = (INPUT,), *,
            method: str = "fast") -> dict[str, torch.Tensor]:
    """``{layer: contribution ratios of its output units}`` (paper 3, Eq. 3 and 6): as
    :func:`contribution_ratio`, without the bias shares (a little faster)."""
    return _run(model, inputs, target, layers, method, biases=False).ratios


def _run(model, inputs, target, layers, method, biases) -> CAVResult:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(inputs, torch.Tensor) or inputs.ndim != 4:
        raise ValueError("inputs must be a tensor N x C x H x W, got shape "
                         f"{tuple(getattr(inputs, 'shape', ()))}; add a batch axis with x[None]")
    layers = _check_layers(model, layers)
    tensor = next(model.parameters(), None)
    x = inputs.to(tensor.device) if tensor is not None else inputs
    with explaining(model):
        walk = _fast if method == "fast" else _reference
        return walk(model, usable(x), target, layers, biases)


def channel_map(ratios: torch.Tensor) -> torch.Tensor:
    """N x H x W: a conv layer's ratios (N x C x H x W) summed over channels (paper 3, 3.3)."""
    if ratios.ndim != 4:
        raise ValueError(f"channel_map needs N x C x H x W ratios, got {tuple(ratios.shape)}")
    return ratios.sum(1)
