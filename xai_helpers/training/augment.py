"""Training-time augmentation on batches of tensors (images float in [0, 1], NCHW).

Every random draw comes from the ``generator`` that :func:`xai_helpers.train.fit` seeds per
epoch, so a resumed run sees the same views as an uninterrupted one.

Kinds (``Recipe.augment``):

* ``"none"``: the images as they are;
* ``"shift"``: random shifts of up to 2 px, zero fill (MNIST-sized digits);
* ``"crop_flip"``: a random 32x32 crop of the 4-px zero-padded image, then a horizontal flip
  with probability 1/2 (the usual CIFAR-10 augmentation);
* ``"crop_flip_cutout"``: ``crop_flip``, then Cutout (DeVries & Taylor 2017): one 16x16 square
  per image, centred anywhere in the image (so partly outside near the border), set to 0. The
  GCM's input is not centred, so 0 is black: a region that contributes nothing to a CCM and
  that the classifier must learn to do without.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["KINDS", "augment", "cutout", "training_view"]

KINDS = ("none", "shift", "crop_flip", "crop_flip_cutout")
CUTOUT_SIZE = 16  # DeVries & Taylor's size for CIFAR-10


def _crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by up to ``pad`` pixels each way (a crop of the zero-padded image)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h)).to(x.device)  # n x h
    cols = (dx.view(n, 1) + torch.arange(w)).to(x.device)  # n x w
    return padded[torch.arange(n, device=x.device)[:, None, None, None],
                  torch.arange(c, device=x.device)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def cutout(x: torch.Tensor, generator: torch.Generator, size: int = CUTOUT_SIZE) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): a ``size`` x ``size`` square per image, its centre drawn
    uniformly over the image, set to 0 in every channel (clipped at the border)."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1), generator=generator)
    cx = torch.randint(0, w, (n, 1), generator=generator)
    rows, cols = torch.arange(h).view(1, h), torch.arange(w).view(1, w)
    inside_y = (rows >= cy - size // 2) & (rows < cy - size // 2 + size)  # n x h
    inside_x = (cols >= cx - size // 2) & (cols < cx - size // 2 + size)  # n x w
    hole = (inside_y[:, :, None] & inside_x[:, None, :]).to(x.device)  # n x h x w
    return x.masked_fill(hole[:, None], 0.0)


def augment(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """The batch ``x`` augmented as ``kind`` says (one of :data:`KINDS`, see the module doc)."""
    if kind == "none":
        return x
    if kind not in KINDS:
        raise ValueError(f"unknown augment {kind!r}: use one of {', '.join(KINDS)}")
    out = _crop(x, 2 if kind == "shift" else 4, generator)
    if kind.startswith("crop_flip"):
        flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    if kind == "crop_flip_cutout":
        out = cutout(out, generator)
    return out


def training_view(images: torch.Tensor, jpeg: torch.Tensor | None, index: torch.Tensor,
                  kind: str, jpeg_p: float, generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A training batch as the model sees it: each image replaced by its JPEG-75 copy (as in
    the offline CIFAR-10 test set) with probability ``jpeg_p``, then augmented as ``kind``.
    Also returns which images were replaced (``None`` without JPEG copies)."""
    x, use = images[index], None
    if jpeg is not None:
        use = (torch.rand(len(index), generator=generator) < jpeg_p).to(images.device)
        x = torch.where(use[:, None, None, None], jpeg[index], x)
    return augment(x, kind, generator), use
