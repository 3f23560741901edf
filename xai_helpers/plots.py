"""Plotting primitives shared by all notebooks (figures of papers 1-4); the multi-panel
figures are built on them in :mod:`xai_helpers.figures`, and :mod:`xai_helpers.viz` gathers
both for the notebooks.

Every function either returns the matplotlib ``Figure`` it made or draws into a given ``ax``
and returns the artist (``AxesImage``) or the ``Axes``. Images may be torch tensors or numpy
arrays, C x H x W, H x W or H x W x C with 1 or 3 channels and values in [0, 1]; this module is
the numpy boundary of the package (see ``to_numpy_image``). Signed maps (filter contributions,
Class Weight Maps) use a diverging colormap centred at zero; every figure has a title and every
colour bar a label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

__all__ = ["ImageLike", "setup", "as_array", "to_numpy_image", "no_ticks", "show_image",
           "image_grid", "map_2d", "vmax_of", "signed_heatmap", "heatmap_over_image", "frame",
           "class_examples", "map_grid", "number_grid"]

ImageLike = torch.Tensor | np.ndarray

_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma


def setup(dpi: int = 80) -> None:
    """Set modest figure defaults for the notebooks; call once in each setup cell."""
    plt.rcParams.update({
        "figure.dpi": dpi,
        "savefig.dpi": dpi,
        "font.size": 9,
        "axes.titlesize": 9,
        "figure.titlesize": 11,
        "image.interpolation": "nearest",  # pixels and filter maps stay crisp
    })


def as_array(values: ImageLike) -> np.ndarray:
    """A float numpy copy of a tensor (any device, with or without grad) or an array."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    return np.asarray(values, dtype=np.float32)


def to_numpy_image(img: ImageLike) -> np.ndarray:
    """An image as numpy, H x W (grey) or H x W x 3 (RGB), clipped to [0, 1].

    Parameters
    ----------
    img
        Tensor or array, C x H x W, H x W or H x W x C with C in {1, 3}; a leading batch
        dimension of size 1 is dropped. A 3-D input whose first dimension is 1 or 3 is read as
        C x H x W (the package's convention), otherwise as H x W x C.
    """
    arr = as_array(img)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3:
        if arr.shape[0] in (1, 3):
            arr = np.moveaxis(arr, 0, -1)
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 3):
        return np.clip(arr, 0.0, 1.0)
    raise ValueError(f"expected C x H x W, H x W or H x W x C with C in (1, 3), got {img.shape}")


def no_ticks(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def show_image(ax: Axes, img: ImageLike, title: str | None = None) -> AxesImage:
    """Draw an image (grey with cmap 'gray' on [0, 1], or RGB) without ticks."""
    arr = to_numpy_image(img)
    artist = ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0.0, vmax=1.0)
    no_ticks(ax)
    if title is not None:
        ax.set_title(title)
    return artist


def image_grid(images: ImageLike | Sequence[ImageLike], titles: Sequence[str] | None = None,
               ncols: int = 10, title: str | None = None, size: float = 1.2) -> Figure:
    """A grid of images with per-panel titles and a suptitle; unused panels are hidden.

    Parameters
    ----------
    images
        N x C x H x W tensor/array or a sequence of images (see ``to_numpy_image``).
    titles
        One title per image, or ``None``.
    ncols
        Panels per row; reduced to N when there are fewer images.
    title
        The figure's suptitle.
    size
        Width and height of one panel in inches.
    """
    n = len(images)
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} images")
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    extra = 0.25 if titles is not None else 0.0
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(size * ncols, (size + extra) * nrows + 0.4))
    for i, ax in enumerate(axes.flat):
        if i < n:
            show_image(ax, images[i], None if titles is None else titles[i])
        else:
            ax.set_visible(False)
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def map_2d(values: ImageLike) -> np.ndarray:
    """A 2-D float numpy map; singleton dimensions (e.g. 1 x H x W) are dropped."""
    arr = as_array(values)
    if arr.ndim > 2:
        arr = arr.squeeze()
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D map (H x W), got shape {tuple(values.shape)}")
    return arr


def vmax_of(arr: np.ndarray, vmax: float | None) -> float:
    """``vmax`` if given, else max |arr|; 1 for an all-zero (or all-NaN) map."""
    if vmax is not None:
        return float(vmax)
    finite = np.abs(arr[np.isfinite(arr)])
    m = float(finite.max()) if finite.size else 0.0
    return m if m > 0 else 1.0


def _colorbar(ax: Axes, artist: AxesImage, label: str) -> None:
    bar = ax.figure.colorbar(artist, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label(label)


def signed_heatmap(ax: Axes, values: ImageLike, title: str | None = None,
                   cbar_label: str = "contribution", cmap: str = "RdBu_r",
                   vmax: float | None = None) -> AxesImage:
    """Draw a signed H x W map with a diverging colormap centred at zero and a colour bar.

    The colour limits are (-vmax, vmax) with ``vmax = max |values|`` unless given, so white
    means zero and red/blue mean positive/negative; an all-zero map uses ``vmax = 1``.
    Returns the ``AxesImage``.
    """
    arr = map_2d(values)
    m = vmax_of(arr, vmax)
    artist = ax.imshow(arr, cmap=cmap, vmin=-m, vmax=m)
    _colorbar(ax, artist, cbar_label)
    no_ticks(ax)
    if title is not None:
        ax.set_title(title)
    return artist


def _resize_nearest(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``arr`` (h x w) resized to ``shape`` by nearest neighbour (a 7 x 7 map -> 28 x 28)."""
    if arr.shape == shape:
        return arr
    t = torch.from_numpy(np.ascontiguousarray(arr))[None, None]
    return F.interpolate(t, size=shape, mode="nearest")[0, 0].numpy()


def heatmap_over_image(ax: Axes, image: ImageLike, values: ImageLike, title: str | None = None,
                       alpha: float = 0.6, signed: bool = True,
                       cbar_label: str | None = None) -> AxesImage:
    """Draw a map over a grey version of the image, with a colour bar.

    The map (h x w) is resized to the image size (H x W) by nearest neighbour when the sizes
    differ, so each map cell covers a visible block of pixels (no smoothing is invented).

    Parameters
    ----------
    image
        The input image (see ``to_numpy_image``); RGB is converted to grey.
    values
        The map, h x w (singleton dimensions are dropped).
    alpha
        Opacity of the map.
    signed
        ``True``: diverging 'RdBu_r' centred at zero (limits -max|v|..max|v|);
        ``False``: 'inferno' from 0 to max(values) (negative values show as 0).
    cbar_label
        Colour-bar label; default "contribution" (signed) or "importance" (unsigned).

    Returns
    -------
    The ``AxesImage`` of the map (the top image).
    """
    grey = to_numpy_image(image)
    if grey.ndim == 3:
        grey = grey @ _GREY_WEIGHTS
    arr = _resize_nearest(map_2d(values), grey.shape)
    ax.imshow(grey, cmap="gray", vmin=0.0, vmax=1.0)
    if signed:
        m = vmax_of(arr, None)
        artist = ax.imshow(arr, cmap="RdBu_r", vmin=-m, vmax=m, alpha=alpha)
    else:
        m = vmax_of(np.clip(arr, 0.0, None), None)
        artist = ax.imshow(arr, cmap="inferno", vmin=0.0, vmax=m, alpha=alpha)
    if cbar_label is None:
        cbar_label = "contribution" if signed else "importance"
    _colorbar(ax, artist, cbar_label)
    no_ticks(ax)
    if title is not None:
        ax.set_title(title)
    return artist


def frame(ax: Axes, color: str = "red", width: float = 4) -> Axes:
    """Draw a coloured frame around a panel (the papers frame rank-1 filters red, rank-2 blue)."""
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(color)
        spine.set_linewidth(width)
    return ax


def class_examples(dataset, cls: int, n: int = 16, ncols: int = 8) -> Figure:
    """The first ``n`` images of class ``cls`` in an ``ImageData``, titled by dataset and class."""
    if not 0 <= cls < len(dataset.classes):
        raise ValueError(f"class {cls} is not in 0..{len(dataset.classes) - 1} "
                         f"for {dataset.name}")
    index = torch.nonzero(dataset.labels == cls).flatten()[:n]
    if len(index) == 0:
        raise ValueError(f"{dataset.name} ({len(dataset)} images) has no image of class {cls}")
    return image_grid(dataset.images[index], ncols=ncols,
                      title=f"{dataset.name}: {len(index)} images of class {cls} "
                            f"({dataset.classes[cls]})")


def map_grid(maps: ImageLike, titles: Sequence[str] | None = None, *, ncols: int = 3,
             frames: dict[int, str] | None = None, title: str | None = None,
             size: float = 1.5, cmap: str = "viridis", cbar_label: str = "activation") -> Figure:
    """K feature maps (K x h x w) on a grid with one shared colour scale and colour bar.

    ``frames`` maps a panel index to a frame colour (paper 1's Fig. 4: rank 1 red, rank 2
    blue). Unsigned maps (after ReLU) use a sequential colour map from 0.
    """
    arr = as_array(maps)
    n = len(arr)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(size * ncols + 0.8, (size + 0.25) * nrows + 0.4))
    top = float(arr.max()) if arr.size and arr.max() > 0 else 1.0
    artist = None
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        artist = ax.imshow(arr[i], cmap=cmap, vmin=min(0.0, float(arr.min())), vmax=top)
        no_ticks(ax)
        if titles is not None:
            ax.set_title(titles[i])
        if frames and i in frames:
            frame(ax, frames[i])
    fig.colorbar(artist, ax=axes.ravel().tolist(), fraction=0.05, pad=0.04, label=cbar_label)
    if title is not None:
        fig.suptitle(title)
    return fig


def number_grid(ax: Axes, values: ImageLike, title: str | None = None,
                fmt: str | None = "{:.2f}",
                cbar_label: str = "contribution", signed: bool = True) -> AxesImage:
    """A small matrix (e.g. paper 1's Fig. 3: the 3x3 map contributions) as a heat map with
    each value printed in its cell: centred at zero when ``signed``, else from 0 (counts)."""
    arr = map_2d(values)
    if signed:
        artist = signed_heatmap(ax, arr, title, cbar_label=cbar_label)
    else:
        artist = ax.imshow(arr, cmap="Reds", vmin=0.0, vmax=vmax_of(arr, None))
        _colorbar(ax, artist, cbar_label)
        no_ticks(ax)
        if title is not None:
            ax.set_title(title)
    m = vmax_of(arr, None)
    if fmt is not None:  # None: colours only (large grids)
        for (r, c), v in np.ndenumerate(arr):
            ax.text(c, r, fmt.format(v), ha="center", va="center",
                    color="white" if abs(v) > 0.6 * m else "black")
    return artist
