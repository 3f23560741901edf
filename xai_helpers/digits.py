"""House-number-like digits built from MNIST: an offline stand-in for SVHN (paper 2, 4.5).

SVHN format 2 images are 32x32 colour crops of house numbers, labelled by the *centre* digit,
with parts of the neighbouring digits beside it. The paper's Fig. 6 shows that GCM attends to
the centre digit among several. SVHN cannot be downloaded here, so :func:`house_digits` builds
images of the same kind from MNIST, and keeps what SVHN does not have: the mask of the centre
digit, so that "how much of the map falls on the centre digit" can be *measured*.

Each image: a random background colour with a soft left-to-right shade, the centre digit
(the label) squeezed to 16 x 24 pixels (SVHN's digits are taller than wide) at the centre with
up to 2 pixels of jitter, and with probability 0.75 each a left and a right neighbour (other
MNIST digits of any class, drawn from the split's first 1,000) 13 pixels further out, cut off
by the frame; digits in one colour that contrasts with the background; mild pixel noise.
Everything depends only on the seed and the image index, so the first ``n >= 1000`` images of
a split are the same whatever ``n``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # only for the annotations: data imports this module to build the set
    from .data import ImageData

__all__ = ["house_digits", "SIZE", "DIGIT_HEIGHT", "DIGIT_WIDTH", "NEIGHBOUR_OFFSET"]

SIZE, DIGIT_HEIGHT, DIGIT_WIDTH, NEIGHBOUR_OFFSET = 32, 24, 16, 13
NEIGHBOUR_POOL = 1_000
_SEEDS = {"train": 1_000, "test": 2_000}


def _params(n: int, split: str) -> dict[str, np.ndarray]:
    """Per-image random choices, drawn for whole splits in a fixed order."""
    rng = np.random.default_rng(_SEEDS[split])
    bg = rng.uniform(0.0, 1.0, (n, 3))
    fg = rng.uniform(0.0, 1.0, (n, 3))
    # contrast: push the digit colour away from the background's brightness
    lum = lambda c: c @ np.array([0.299, 0.587, 0.114])  # noqa: E731
    dark_bg = lum(bg) > 0.5
    fg = np.where(dark_bg[:, None], fg * 0.35, 0.65 + 0.35 * fg)
    return {"bg": bg, "fg": fg, "shade": rng.uniform(-0.25, 0.25, n),
            "dy": rng.integers(-2, 3, n), "dx": rng.integers(-2, 3, n),
            "left": rng.random(n) < 0.75, "right": rng.random(n) < 0.75,
            "left_idx": rng.integers(0, 1 << 30, n), "right_idx": rng.integers(0, 1 << 30, n),
            "noise_seed": rng.integers(0, 1 << 30, n)}


def _squeeze(digits: torch.Tensor) -> torch.Tensor:
    """MNIST 28x28 (N x 1 x 28 x 28) -> 24 high x 16 wide alpha masks in [0, 1]."""
    return F.interpolate(digits, size=(DIGIT_HEIGHT, DIGIT_WIDTH), mode="bilinear",
                         align_corners=False, antialias=True).clamp(0, 1)


def _place(alpha: torch.Tensor, top: np.ndarray, left: np.ndarray) -> torch.Tensor:
    """Paste N small alpha masks into N empty 32x32 canvases at (top, left) (may be cut off)."""
    n = len(alpha)
    margin = DIGIT_WIDTH + NEIGHBOUR_OFFSET
    big = torch.zeros(n, 1, SIZE + 2 * margin, SIZE + 2 * margin)
    for i in range(n):
        y, x = int(top[i]) + margin, int(left[i]) + margin
        big[i, :, y:y + DIGIT_HEIGHT, x:x + DIGIT_WIDTH] = alpha[i]
    return big[:, :, margin:margin + SIZE, margin:margin + SIZE]


def house_digits(mnist: ImageData, n_split: int | None = None,
                 mask_threshold: float = 0.3) -> tuple[ImageData, torch.Tensor, torch.Tensor]:
    """Build house-number-like images from an MNIST split.

    Returns ``(images, centre_mask, neighbour_mask)``: an :class:`ImageData` named
    ``house_digits`` (N x 3 x 32 x 32 in [0, 1], label = the centre digit's), and two bool
    masks N x 32 x 32: the centre digit's pixels (its alpha above ``mask_threshold``) and the
    neighbours' pixels outside the centre digit. ``n_split`` is the size of the whole split
    the random choices are drawn for (default: MNIST's 60,000 / 10,000), so that image ``i``
    is the same whether built from a subset or from the whole split.
    """
    if mnist.images.shape[1:] != (1, 28, 28):
        raise ValueError(f"house_digits needs MNIST images N x 1 x 28 x 28, got "
                         f"{tuple(mnist.images.shape)}")
    n = len(mnist)
    n_split = n_split or {"train": 60_000, "test": 10_000}[mnist.split]
    if n > n_split:
        raise ValueError(f"{n} images but n_split={n_split}")
    p = {k: v[:n] for k, v in _params(n_split, mnist.split).items()}
    centre = _squeeze(mnist.images)
    top = (SIZE - DIGIT_HEIGHT) // 2 + p["dy"]
    left = (SIZE - DIGIT_WIDTH) // 2 + p["dx"]
    a_centre = _place(centre, top, left)
    a_neigh = torch.zeros_like(a_centre)
    for side, sign in (("left", -1), ("right", 1)):
        pool = min(n, NEIGHBOUR_POOL)  # neighbours come from the split's first 1,000 digits
        others = _squeeze(mnist.images[torch.from_numpy(p[f"{side}_idx"] % pool)])
        others = others * torch.from_numpy(p[side]).float().view(-1, 1, 1, 1)
        a_neigh = torch.maximum(a_neigh, _place(others, top, left + sign * NEIGHBOUR_OFFSET))
    alpha = torch.maximum(a_centre, a_neigh)
    ramp = torch.linspace(-1, 1, SIZE).view(1, 1, 1, SIZE)
    bg = torch.from_numpy(p["bg"]).float().view(n, 3, 1, 1)
    bg = (bg + torch.from_numpy(p["shade"]).float().view(n, 1, 1, 1) * ramp).clamp(0, 1)
    fg = torch.from_numpy(p["fg"]).float().view(n, 3, 1, 1)
    images = bg * (1 - alpha) + fg * alpha
    noise = torch.stack([torch.randn(3, SIZE, SIZE, generator=torch.Generator().manual_seed(
        int(s))) for s in p["noise_seed"]])
    images = (images + 0.02 * noise).clamp(0, 1)
    images = (images * 255).round() / 255  # 8-bit, like a real photo
    centre_mask = a_centre[:, 0] > mask_threshold
    neighbour_mask = (a_neigh[:, 0] > mask_threshold) & ~centre_mask
    data = replace(mnist, name="house_digits", images=images, labels=mnist.labels.clone(),
                   source=f"MNIST digits, {mnist.source}", exact=torch.ones(n, dtype=torch.bool))
    return data, centre_mask, neighbour_mask
