"""Input checks shared by every module: images as the course's models take them (and
:class:`Normalize`, the first layer of every course model, which applies them), and class
indices. Each returns the value converted where that is safe, or raises a ``ValueError`` that
says what was expected and how to fix it (the bottom of the package: imports nothing of it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["Normalize", "check_images", "class_indices"]


def check_images(x, channels: int, size: int | None = None,
                 dtype: torch.dtype = torch.float32, tolerance: float = 1e-3) -> torch.Tensor:
    """``x`` as a float tensor N x ``channels`` x H x W in [0, 1] (:class:`Normalize`'s
    check), or a ``ValueError`` that says what is wrong and how to fix it."""
    expected = f"images N x {channels} x H x W, float in [0, 1]"
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"expected {expected} (a tensor or NumPy array), got "
                             f"{type(x).__name__}") from None
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(
            f"expected {expected}, got shape {tuple(x.shape)}; add a batch axis with x[None] "
            f"or reorder HWC with x.permute(0, 3, 1, 2)")
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"expected {size} x {size} images, got {x.shape[-2]} x {x.shape[-1]}; "
                         f"resize them first (torch.nn.functional.interpolate)")
    if len(x) == 0:
        raise ValueError(f"expected {expected}, got an empty batch (N = 0)")
    if not x.is_floating_point():
        raise ValueError(f"expected {expected}, got dtype {x.dtype}; for 0-255 images use "
                         f"x.float() / 255")
    x = x.to(dtype)
    if torch.compiler.is_compiling():  # no data-dependent checks inside a compiled graph
        return x
    lo, hi = torch.aminmax(x.detach())
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"the images contain NaN or Inf; expected {expected}")
    if lo < -tolerance:
        raise ValueError(f"expected {expected}, got values down to {lo:.4g}: normalised "
                         f"already (e.g. ImageNet mean / std)? The model normalises itself: "
                         f"pass the loader's images")
    if hi > 1 + tolerance:
        raise ValueError(f"expected {expected}, got values up to {hi:.4g}: 0-255 images? use "
                         f"x / 255")
    return x


def class_indices(target, n: int, k: int, *, what: str = "target") -> torch.Tensor:
    """``target`` (an int, or one class per image) as an (n,) long tensor of classes 0 to
    k - 1; floats, booleans, wrong lengths and out-of-range classes are refused."""
    if isinstance(target, bool) or (isinstance(target, float)):
        raise ValueError(f"{what} must be a class index (int) or one per image, got {target!r}")
    try:
        t = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor)
                            else target)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{what} must be a class index (int) or one per image, got "
                         f"{type(target).__name__}") from None
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{what} must hold integer class indices, got dtype {t.dtype}")
    t = t.long().cpu()
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"{what} must be an int or one class per image, shape ({n},), got "
                         f"shape {tuple(t.shape)}")
    bad = (t < 0) | (t >= k)
    if bool(bad.any()):
        raise ValueError(f"{what} {t[bad][0].item()} is out of range: the model has {k} "
                         f"classes (0 to {k - 1})")
    return t


class Normalize(nn.Module):
    """First layer of a model: check the input and standardise it, ``(x - mean) / std``.

    Every course model takes the loaders' images as they are: float N x C x H x W in [0, 1].
    What can be converted safely is (a NumPy array, another float dtype: to the model's);
    the usual mistakes get a clear ``ValueError`` saying what was expected: a single image
    without batch axis, HWC order, the wrong number of channels or (``size``) the wrong image
    size, an empty batch, integer (uint8) images, 0-255 values, already normalised values
    (below 0), NaN or Inf.
    """

    TOLERANCE = 1e-3  # float rounding of [0, 1] images (blur, interpolation) passes

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], size: int | None = None):
        super().__init__()
        self.size = size
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def extra_repr(self) -> str:
        size = f", size={self.size}" if self.size else ""
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}{size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_images(x, self.mean.shape[1], self.size, self.mean.dtype,
                         self.TOLERANCE)
        return (x - self.mean) / self.std
