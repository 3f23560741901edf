"""Every map of notebook 06 in one calling convention (paper 2, seed 002, sections 4.6-4.7).

``attribute(method, model, inputs, targets=None)`` returns the maps of ``targets`` as a float
tensor **N x T x C' x H x W** on the CPU, always five axes and always the input's H x W:

* ``T`` = K (``targets=None``: all classes, in class order) or 1 (an int, or one class per
  image as an (N,) tensor).
* ``C'`` = C for maps with one value per input element (Guided Backpropagation, Guided
  Grad-CAM, Integrated Gradients, GCM's CCM, CAV at the input) and 1 for maps with one value
  per pixel (CAM, Grad-CAM, GCM's CWM, occlusion, CAV at a hidden layer). Maps computed at a
  coarser resolution (CAM, Grad-CAM) are upscaled bicubically to H x W here (:data:`UPSAMPLE`,
  paper 2, 4.6: "bicubic upscaling x4"), so every method's map can be multiplied by the input.

All classes of a batch come from batched passes, never from K calls per image: one forward
pass gives all K maps of CAM, CWM, CCM and occlusion; gradient methods run one forward pass
and the K backward passes as one vectorised backward (``autograd.grad(...,
is_grads_batched=True)``). Each method also has a *reference*: captum's class (or, for CAM
and GCM, the paper's formula written plainly) called with one target per image;
``attribute(..., reference=True)`` runs it on the batch repeated T times with the targets
tiled, and the tests check that both agree. Signed maps stay signed.

Methods (:data:`METHODS`; ``applicable(model)`` lists those that fit a model; a method on a
model it does not fit raises a ``ValueError`` naming what it needs), knobs with defaults:

``guided_backprop`` (GB), ``guided_gradcam`` (GGCAM, ``layer``), ``gradcam`` (``layer``:
    the layer feeding the global average pooling, else the last conv), ``cam``
    Paper 2's comparison on the plain CNN (4.6). Grad-CAM keeps its ReLU (Selvaraju et al.,
    Eq. 2), applied again after the bicubic upscaling so the returned map is >= 0
    (:func:`class_maps.gradcam`); CAM is signed (no ReLU, no bias: its mean over the feature
    map plus the bias is the logit).
``cwm``, ``ccm``
    GCM's maps (paper 2, Eq. 1 and 3), from ``model.maps``.
``cav`` (``layer="input"``)
    Paper 3's fast path, as *contributions* (ratio times score, the unit of the score), not
    ratios: a ratio map sums to about 1 for every class, which no class score can be read
    from. Equals input x gradient at the input of a piecewise-linear network.
``occlusion`` (``window=8, stride=8, fill=0.0``)
    Paper 1's region deletion in one pass, on the logits; ``single_pass_occlusion`` of
    :mod:`xai_helpers.occlusion` does not fit (softmax, one class, averaged over images).
``integrated_gradients`` (``n_steps=32, baseline=0.0``)
    Zero baseline = a black image (the models take [0, 1] pixels); Gauss-Legendre rule; the
    steps chosen by completeness (:data:`class_maps.IG_STEPS`,
    :func:`class_maps.completeness_gap`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from . import class_maps as cm
from .cav import explaining, usable
from .checks import class_indices
from .class_maps import UPSAMPLE, default_layer, gap_linear

__all__ = ["Method", "METHODS", "UPSAMPLE", "attribute", "applicable", "register_method",
           "maps_function", "MapsFn", "gap_linear", "default_layer"]

MapsFn = Callable[..., torch.Tensor]  # (model, inputs, targets) -> N x T x C' x H x W


@dataclass(frozen=True)
class Method:
    """A registered method. ``compute(model, x, classes, **knobs)``: N x T x C' x H x W for
    ``classes`` N x T (``None``: all K), batched; ``reference(model, x, target, **knobs)``:
    N x C' x H x W for one class per image; ``needs(model)`` raises ``ValueError`` if the
    method does not fit; ``visual``: the paper's visual map, "blend" (CAM procedure) or
    "as_is" (paper 2, 4.6)."""

    name: str
    title: str
    compute: Callable
    reference: Callable
    needs: Callable[[nn.Module], None]
    visual: str
    cite: str


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (names are unique)."""
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is registered twice")
    METHODS[method.name] = method
    return method


def _method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(METHODS)}")
    return METHODS[name]


def applicable(model: nn.Module) -> list[str]:
    """The registered methods that fit ``model``."""
    fits = []
    for name, method in METHODS.items():
        try:
            method.needs(model)
        except ValueError:
            continue
        fits.append(name)
    return fits


def attribute(method: str, model: nn.Module, inputs: torch.Tensor, targets=None, *,
              reference: bool = False, batch_size: int = 512, **knobs) -> torch.Tensor:
    """Maps of ``method`` for ``targets`` (module docstring): N x T x C' x H x W on the CPU,
    in the model's dtype.

    Parameters
    ----------
    method : a name in :data:`METHODS`
    model : classifier (package docstring); left as it was (mode, requires_grad)
    inputs : N x C x H x W images in [0, 1]
    targets : ``None`` (all K classes, T = K), an int, or an (N,) tensor (T = 1)
    reference : run the per-image reference (captum or the plain formula) on the batch
        repeated T times with the targets tiled, instead of the batched computation
    batch_size : maps (image, class pairs) per pass; bounds the memory
    knobs : the method's own settings (e.g. ``n_steps`` of Integrated Gradients)
    """
    spec = _method(method)
    if not isinstance(inputs, torch.Tensor) or inputs.ndim != 4 or len(inputs) == 0:
        raise ValueError(f"{method}: inputs must be a tensor N x C x H x W with N >= 1, got "
                         f"shape {tuple(getattr(inputs, 'shape', ()))}; add a batch axis with "
                         f"x[None]")
    spec.needs(model)
    param = next(model.parameters(), None)
    x = inputs.to(param.device) if param is not None else inputs
    n = len(x)
    with explaining(model):
        x = usable(x)
        with torch.no_grad():
            k = model(x[:1]).shape[1]
        classes = _classes(targets, n, k)
        t = k if classes is None else classes.shape[1]
        step = max(1, batch_size // t)
        out = []
        for i in range(0, n, step):
            xb, cb = x[i:i + step], None if classes is None else classes[i:i + step]
            if reference:
                cb = torch.arange(k, device=x.device).expand(len(xb), k) if cb is None else cb
                maps = spec.reference(model, xb.repeat_interleave(t, 0), cb.flatten(), **knobs)
                maps = maps.reshape(len(xb), t, *maps.shape[1:])
            else:
                maps = spec.compute(model, xb, cb, **knobs)
            out.append(maps.detach().cpu())
    return torch.cat(out)


def maps_function(method: str | MapsFn, **knobs) -> tuple[str, MapsFn]:
    """``(name, maps)`` with ``maps(model, inputs, targets=None)`` -> N x T x C' x H x W: a
    registered method (its ``knobs`` bound) or a callable of that signature, as it is (the
    measures of :mod:`xai_helpers.decline` and :mod:`xai_helpers.faithfulness` take both)."""
    if callable(method):
        return getattr(method, "__name__", "custom"), method
    _method(method)
    return method, lambda model, x, targets=None: attribute(method, model, x, targets, **knobs)


def _classes(targets, n: int, k: int) -> torch.Tensor | None:
    """``targets`` as an N x T long tensor of classes (``None``: all K classes)."""
    if targets is None:
        return None
    return class_indices(targets, n, k, what="targets")[:, None]


def _needs_gcm(model: nn.Module) -> None:
    if not callable(getattr(model, "maps", None)):
        raise ValueError(f"CWM and CCM need a GCM model (xai_helpers.gcm.GCM, whose "
                         f".maps(x) returns (cwm, ccm, scores)); {type(model).__name__} has no "
                         f".maps")


def _needs_relu(model: nn.Module) -> None:
    if not any(isinstance(m, nn.ReLU) for m in model.modules()):
        raise ValueError(f"Guided Backpropagation needs its ReLUs as nn.ReLU modules (a "
                         f"functional relu cannot be hooked); {type(model).__name__} has none")


def _needs_layer(model: nn.Module) -> None:
    views = getattr(model, "views", None)
    if callable(views) and len(views()) > 1:
        raise ValueError(f"a layer's maps need one pass per image, but this "
                         f"{type(model).__name__} averages {len(views())} views of each image "
                         f"(its layers see every image {len(views())} times)")
    default_layer(model)


def _needs_conv(model: nn.Module) -> None:
    _needs_layer(model)
    _needs_relu(model)


def _needs_nothing(model: nn.Module) -> None:
    return None


def _quiet(fn: Callable) -> Callable:
    """Run a captum reference without its warnings (hooks set on ReLUs, inputs need grad)."""
    def run(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn(*args, **kwargs)
    return run


for _spec in (
    Method("guided_backprop", "GB", cm.guided_backprop, cm.guided_backprop_reference,
           _needs_relu, "as_is", "Springenberg et al. 2015; paper 2, 4.6"),
    Method("guided_gradcam", "GGCAM", cm.guided_gradcam, cm.guided_gradcam_reference,
           _needs_conv, "as_is", "Selvaraju et al. 2017; paper 2, 4.6"),
    Method("gradcam", "Grad-CAM", cm.gradcam, cm.gradcam_reference, _needs_layer, "blend",
           "Selvaraju et al. 2017; paper 2, 4.6"),
    Method("cam", "CAM", cm.cam, cm.cam_reference, gap_linear, "blend",
           "Zhou et al. 2016; paper 2, 4.6"),
    Method("cwm", "GCM CWM", cm.cwm, cm.cwm_reference, _needs_gcm, "as_is", "paper 2, Eq. 1"),
    Method("ccm", "GCM CCM", cm.ccm, cm.ccm_reference, _needs_gcm, "as_is", "paper 2, Eq. 3"),
    Method("cav", "CAV", cm.cav, cm.cav_reference, _needs_nothing, "as_is",
           "paper 3, Eq. 1-9 (fast path)"),
    Method("occlusion", "Occlusion", cm.occlusion, cm.occlusion_reference, _needs_nothing,
           "as_is", "Zeiler and Fergus 2014; paper 1, section 4"),
    Method("integrated_gradients", "IG", cm.integrated_gradients,
           cm.integrated_gradients_reference, _needs_nothing, "as_is",
           "Sundararajan et al. 2017"),
):
    register_method(Method(_spec.name, _spec.title, _spec.compute, _quiet(_spec.reference),
                           _spec.needs, _spec.visual, _spec.cite))
