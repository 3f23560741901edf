"""The maps of notebook 06, each batched over classes (paper 2, seed 002, section 4.6).

One function per method, ``name(model, x, classes, **knobs)`` -> N x T x C' x H x W for
``classes`` N x T (``None``: all K classes), and one per-image reference,
``name_reference(model, x, target, **knobs)`` -> N x C' x H x W for one class per image
(captum's class, or the paper's formula written plainly for CAM and GCM). Use them through
:func:`xai_helpers.methods.attribute`, which checks the model, bounds the memory and fixes the
conventions (map shapes, signs, upscaling) described there.

Batching: CAM, CWM, CCM and occlusion get all K classes from their forward passes; the gradient
methods run one forward pass and the K backward passes as one vectorised backward
(:func:`class_gradients`, ``autograd.grad(..., is_grads_batched=True)``) instead of repeating
the batch K times as captum needs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .cav import INPUT, contribution_ratio, recording
from .hooks import get_layer

__all__ = ["UPSAMPLE", "IG_STEPS", "completeness_gap", "gap_linear", "default_layer",
           "class_gradients", "guided_backprop",
           "gradcam", "guided_gradcam", "cam", "cwm", "ccm", "cav", "occlusion",
           "integrated_gradients", "guided_backprop_reference", "gradcam_reference",
           "guided_gradcam_reference", "cam_reference", "cwm_reference", "ccm_reference",
           "cav_reference", "occlusion_reference", "integrated_gradients_reference"]

UPSAMPLE = "bicubic"  # coarse maps (CAM, Grad-CAM, CAV at a layer) -> input size, paper 2, 4.6


def _select(maps: torch.Tensor, classes: torch.Tensor | None) -> torch.Tensor:
    """N x T x ... from all-class maps N x K x ... (``classes`` N x T)."""
    if classes is None:
        return maps
    index = classes.to(maps.device).view(*classes.shape, *[1] * (maps.ndim - 2))
    return maps.gather(1, index.expand(-1, -1, *maps.shape[2:]))


def _upsample(maps: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """N x T x h x w -> N x T x 1 x H x W, bicubic (:data:`UPSAMPLE`) when h x w differs."""
    if maps.shape[-2:] != x.shape[-2:]:
        maps = F.interpolate(maps, size=x.shape[-2:], mode=UPSAMPLE, align_corners=False)
    return maps.unsqueeze(2)


# --------------------------------------------------------------------------- requirements

_PASS = (nn.Flatten, nn.Dropout, nn.Identity)  # no-ops between the pooling and the linear layer


def gap_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """``(name of the global average pooling, final linear layer)`` of a model that ends in
    global average pooling and one linear layer: an ``nn.Sequential`` ending in
    ``AdaptiveAvgPool2d(1), Flatten, Linear`` (as :func:`~xai_helpers.gcm.plain_cnn`), or a
    model whose last leaf modules, in the order they are defined, are ``AdaptiveAvgPool2d(1)``
    then (after flattening or dropout) one ``Linear`` (torchvision's ResNets, EfficientNets).
    Else a ``ValueError`` saying what CAM needs. :func:`cam` checks on every call that the
    guess reproduces the logits."""
    leaves = [(n, m) for n, m in model.named_modules() if n and next(m.children(), None) is None]
    while leaves and isinstance(leaves[-1][1], _PASS):
        leaves.pop()
    if len(leaves) >= 2 and isinstance(leaves[-1][1], nn.Linear):
        rest = [(n, m) for n, m in leaves[:-1] if not isinstance(m, _PASS)]
        pool = rest[-1][1] if rest else None
        if isinstance(pool, nn.AdaptiveAvgPool2d) and pool.output_size in (1, (1, 1)):
            return rest[-1][0], leaves[-1][1]
    raise ValueError(f"CAM needs a model ending in global average pooling and one linear layer "
                     f"(AdaptiveAvgPool2d(1), then Flatten, then Linear, as "
                     f"xai_helpers.gcm.plain_cnn or torchvision's ResNets); "
                     f"{type(model).__name__} does not")


def default_layer(model: nn.Module) -> str:
    """Grad-CAM's layer: the one feeding the global average pooling (``plain_cnn``:
    ``features``, i.e. the output of its last block ``features.layer10``; a ResNet: its
    ``layer4``), else the last ``nn.Conv2d``."""
    try:
        name, _ = gap_linear(model)
        parent, _, leaf = name.rpartition(".")
        siblings = [n for n, _ in (model.get_submodule(parent) if parent else model)
                    .named_children()]
        if siblings.index(leaf) > 0:
            return ".".join(filter(None, [parent, siblings[siblings.index(leaf) - 1]]))
    except ValueError:
        pass
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"Grad-CAM needs a convolutional layer; {type(model).__name__} has "
                         f"no nn.Conv2d (give layer=...)")
    return convs[-1]


# --------------------------------------------------------------------------- batched gradients

def _guided_relu(module, grad_input, grad_output):
    """Guided Backpropagation's ReLU (Springenberg et al. 2015, section 3.4): only positive
    gradients pass back, where the forward input was positive."""
    return (F.relu(grad_input[0]),)


def class_gradients(model, x, classes, layer: str = INPUT, guided: bool = False):
    """``(gradients N x T x ..., activation)`` of the T class scores with respect to ``layer``'s
    output (``"input"``: the images), from one forward pass and one vectorised backward pass."""
    if layer != INPUT:
        get_layer(model, layer)  # a clear error for an unknown name
    x = x.detach().requires_grad_(True)
    handles = []
    try:
        for module in model.modules():
            if guided and isinstance(module, nn.ReLU):
                handles.append(module.register_full_backward_hook(_guided_relu))
        with torch.enable_grad(), recording(model, [] if layer == INPUT else [layer]) as calls:
            logits = model(x)
        act = x if layer == INPUT else calls[-1].output
        n, k = logits.shape
        onehot = (torch.eye(k, device=x.device)[:, None].expand(k, n, k) if classes is None
                  else F.one_hot(classes.to(x.device), k).permute(1, 0, 2).to(logits.dtype))
        (grads,) = torch.autograd.grad(logits, act, grad_outputs=onehot, is_grads_batched=True)
    finally:
        for handle in handles:
            handle.remove()
    return grads.transpose(0, 1), act.detach()


# --------------------------------------------------------------------------- the methods

def guided_backprop(model, x, classes):
    """Guided Backpropagation (Springenberg et al., ICLR-W 2015), paper 2's GB: the gradient
    of each class score with guided ReLUs; the response map used as is (4.6). N x T x C x H x W.
    """
    return class_gradients(model, x, classes, guided=True)[0]


def _gradcam_coarse(model, x, classes, layer):
    grads, act = class_gradients(model, x, classes, layer=layer)  # N x T x D x h x w
    alpha = grads.mean(dim=(-2, -1))  # Selvaraju et al. Eq. 1: channel weights
    return F.relu(torch.einsum("ntd,ndhw->nthw", alpha, act))  # Eq. 2


def gradcam(model, x, classes, layer: str | None = None):
    """Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1-2) at ``layer`` (:func:`default_layer`),
    upscaled bicubically to the input size (paper 2, 4.6), N x T x 1 x H x W, and >= 0.

    The ReLU of Eq. 2 is applied at the layer's resolution and once more after the upscaling:
    bicubic interpolation overshoots next to sharp edges, which on ``cnn_cifar10`` made 8.7% of
    the true class's pixels negative (first 1,000 test images; down to -23% of a map's maximum
    over all classes), values Grad-CAM's ReLU rules out. The second ReLU keeps that promise;
    the peers differ (captum returns the overshoot, pytorch-grad-cam resizes bilinearly)."""
    coarse = _gradcam_coarse(model, x, classes, layer or default_layer(model))
    return _upsample(coarse, x).clamp(min=0)


def guided_gradcam(model, x, classes, layer: str | None = None):
    """Guided Grad-CAM (Selvaraju et al. 2017, section 3.1), paper 2's GGCAM: GB times the
    upscaled Grad-CAM. N x T x C x H x W."""
    return guided_backprop(model, x, classes) * gradcam(model, x, classes, layer)


def cam(model, x, classes):
    """CAM (Zhou et al., CVPR 2016, section 2): ``M_k = sum_d w_kd f_d`` from the last conv
    features ``f`` and the weights ``w`` of the linear layer after global average pooling
    (one forward pass, all classes); upscaled bicubically. N x T x 1 x H x W.
    Its mean over the h x w feature map plus the bias is the class score."""
    gap, fc = gap_linear(model)
    with torch.no_grad(), recording(model, [gap]) as calls:
        logits = model(x)
    features = calls[-1].inputs[0]  # N x D x h x w
    maps = torch.einsum("kd,ndhw->nkhw", fc.weight, features)
    bias = fc.bias if fc.bias is not None else 0
    if not torch.allclose(maps.mean((-2, -1)) + bias, logits, rtol=1e-3, atol=1e-3):
        raise ValueError(f"CAM: the mean of the maps plus the bias is not the score, so "
                         f"{type(model).__name__} does not end in {gap} then its last linear "
                         f"layer as CAM needs")
    return _upsample(_select(maps, classes), x)


def cwm(model, x, classes):
    """GCM's Class Weight Maps (paper 2, Eq. 1), as is. N x T x 1 x H x W."""
    with torch.no_grad():
        return _select(model.maps(x)[0], classes).unsqueeze(2)


def ccm(model, x, classes):
    """GCM's Class Contribution Maps (paper 2, Eq. 2-3), as is; their mean is the class score
    (Eq. 4). N x T x C x H x W."""
    with torch.no_grad():
        return _select(model.maps(x)[1], classes)


def cav(model, x, classes, layer: str = INPUT):
    """CAV (paper 3, Eq. 1-9), the fast path: the *contributions* ``alpha`` of ``layer``'s
    units to each class score, i.e. the contribution ratios times the score ``p``, so that the
    maps of different classes are in the units of their scores (a ratio map sums to 1 minus
    the bias shares for every class). At ``"input"``: N x T x C x H x W; at a hidden layer:
    summed over channels (paper 3, 3.3) and upscaled, N x T x 1 x H x W."""
    grads, act = class_gradients(model, x, classes, layer=layer)
    contributions = act.unsqueeze(1) * grads  # LRP-0 = activation x gradient (cav docstring)
    return contributions if layer == INPUT else _upsample(contributions.sum(2), x)


def _windows(shape, window: int, stride: int) -> torch.Tensor:
    """P x H x W bool: the occluded patches, which must cover every pixel."""
    h, w = shape
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"occlusion: {name} must be a positive integer (pixels), got "
                             f"{value!r}")
    if window > min(h, w) or (h - window) % stride or (w - window) % stride:
        raise ValueError(f"occlusion: window {window} and stride {stride} do not tile "
                         f"{h} x {w} images (need (size - window) % stride == 0)")
    masks = []
    for top in range(0, h - window + 1, stride):
        for left in range(0, w - window + 1, stride):
            mask = torch.zeros(h, w, dtype=torch.bool)
            mask[top:top + window, left:left + window] = True
            masks.append(mask)
    return torch.stack(masks)


def occlusion(model, x, classes, window: int = 8, stride: int = 8, fill: float = 0.0,
              chunk: int = 512):
    """Single-pass occlusion (Zeiler and Fergus, ECCV 2014; paper 1's region deletion without
    the greedy repetition): each ``window`` x ``window`` patch (all channels) is set to ``fill``
    once, and a pixel's value is the drop of the class *logit*, averaged over the patches that
    cover it (as captum's ``Occlusion``). One forward pass per patch gives all K classes.
    N x T x 1 x H x W."""
    masks = _windows(x.shape[-2:], window, stride).to(x.device)  # P x H x W
    with torch.no_grad():
        logits = model(x)
        occluded = torch.where(masks[None, :, None], fill, x[:, None]).flatten(0, 1)
        out = torch.cat([model(occluded[i:i + chunk]) for i in range(0, len(occluded), chunk)])
        drop = logits[:, None] - out.view(len(x), len(masks), -1)  # N x P x K
        maps = torch.einsum("npk,phw->nkhw", drop, masks.to(drop.dtype)) / masks.sum(0)
    return _select(maps, classes).unsqueeze(2)


def _gauss_legendre(n_steps: int) -> tuple[list[float], list[float]]:
    """Points in [0, 1] and weights of the Gauss-Legendre rule (captum's "gausslegendre")."""
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    return list(0.5 * (1 + nodes)), list(0.5 * weights)


# Integrated Gradients' steps, chosen by completeness (the map's sum against score(x) -
# score(black)), not by speed: the smallest of 8, 16, 24, 32, 48, 64 steps whose relative gap
# has a median <= 2.5% and a 90th percentile <= 10% on cnn_cifar10 (true class, first 200 test
# images): 8 steps 11.6% / 32.3%, 16 4.5% / 17.2%, 24 2.8% / 7.8%, 32 2.1% / 6.3%, 64 1.0% / 2.8%.
IG_STEPS = 32


def integrated_gradients(model, x, classes, n_steps: int = IG_STEPS, baseline: float = 0.0):
    """Integrated Gradients (Sundararajan et al., ICML 2017, Eq. 1): ``(x - b) times`` the
    mean gradient on the straight path from the baseline ``b`` (0: a black image) to ``x``,
    with ``n_steps`` Gauss-Legendre points (captum's default rule). N x T x C x H x W; the
    map sums to about ``score(x) - score(b)`` (completeness, exact as n_steps grows; see
    :data:`IG_STEPS` and :func:`completeness_gap`)."""
    base = torch.full_like(x, baseline)
    total = 0.0
    for alpha, weight in zip(*_gauss_legendre(n_steps), strict=True):
        total = total + weight * class_gradients(model, base + alpha * (x - base), classes)[0]
    return (x - base).unsqueeze(1) * total


@torch.no_grad()
def completeness_gap(model, x, classes, maps: torch.Tensor, baseline: float = 0.0):
    """Relative gap of Integrated Gradients' completeness, per image and class (N x T):
    ``|sum(map) - (score(x) - score(b))| / |score(x) - score(b)|`` for ``maps`` as
    :func:`integrated_gradients` returns them (0 = the map accounts for the whole change)."""
    change = model(x) - model(torch.full_like(x, baseline))
    change = _select(change[..., None, None], classes)[..., 0, 0]
    return (maps.sum(dim=(2, 3, 4)) - change).abs() / change.abs().clamp(min=1e-12)


# --------------------------------------------------------------------------- references

def guided_backprop_reference(model, x, target):
    """captum's ``GuidedBackprop``, one class per image."""
    from captum.attr import GuidedBackprop
    return GuidedBackprop(model).attribute(x, target=target)


def gradcam_reference(model, x, target, layer: str | None = None):
    """captum's ``LayerGradCam`` (ReLU on) + ``LayerAttribution.interpolate`` (bicubic), then
    the ReLU again (the course's convention, :func:`gradcam`)."""
    from captum.attr import LayerAttribution, LayerGradCam
    layer = get_layer(model, layer or default_layer(model))
    coarse = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(coarse, x.shape[-2:],
                                        interpolate_mode=UPSAMPLE).clamp(min=0)


def guided_gradcam_reference(model, x, target, layer: str | None = None):
    """captum's ``GuidedBackprop`` times :func:`gradcam_reference` (captum's own
    ``GuidedGradCam`` multiplies by the upscaled map without the second ReLU)."""
    return guided_backprop_reference(model, x, target) * gradcam_reference(model, x, target,
                                                                           layer)


def cam_reference(model, x, target):
    """Zhou et al.'s formula with a loop over the channels, one class per image."""
    gap, fc = gap_linear(model)
    with torch.no_grad(), recording(model, [gap]) as calls:
        model(x)
    features = calls[-1].inputs[0]
    maps = sum(fc.weight[target, d].view(-1, 1, 1) * features[:, d]
               for d in range(features.shape[1]))
    return _upsample(maps.unsqueeze(1), x)[:, 0]


def cwm_reference(model, x, target):
    """Eq. 1 through ``model.cwm``, one class per image."""
    with torch.no_grad():
        return model.cwm(x)[torch.arange(len(x)), target].unsqueeze(1)


def ccm_reference(model, x, target):
    """Eq. 2-3 written out: the CWM tiled over the channels, times the image."""
    return cwm_reference(model, x, target) * x


def cav_reference(model, x, target, layer: str = INPUT):
    """:func:`xai_helpers.cav.contribution_ratio` (fast path) times the score."""
    result = contribution_ratio(model, x, target, [layer], method="fast")
    p = result.scores.to(x.device)
    contributions = result.ratios[layer].to(x.device) * p.view(-1, *[1] * (x.ndim - 1))
    return contributions if layer == INPUT else _upsample(contributions.sum(1)[:, None], x)[:, 0]


def occlusion_reference(model, x, target, window: int = 8, stride: int = 8,
                        fill: float = 0.0, chunk: int = 512):
    """captum's ``Occlusion`` on the logits (``chunk`` is not used)."""
    from captum.attr import Occlusion
    c = x.shape[1]
    maps = Occlusion(model).attribute(x, sliding_window_shapes=(c, window, window),
                                      strides=(c, stride, stride), baselines=fill,
                                      target=target, perturbations_per_eval=16)
    return maps[:, :1]


def integrated_gradients_reference(model, x, target, n_steps: int = IG_STEPS,
                                   baseline: float = 0.0):
    """captum's ``IntegratedGradients`` with the same rule and baseline."""
    from captum.attr import IntegratedGradients
    return IntegratedGradients(model).attribute(x, baselines=baseline, target=target,
                                                n_steps=n_steps, method="gausslegendre")
