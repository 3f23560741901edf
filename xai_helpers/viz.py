"""Plotting helpers shared by all notebooks (figures of papers 1-4).

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
from matplotlib.figure import Figure, SubFigure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

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


def _as_array(values: ImageLike) -> np.ndarray:
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
    arr = _as_array(img)
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


def _no_ticks(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def show_image(ax: Axes, img: ImageLike, title: str | None = None) -> AxesImage:
    """Draw an image (grey with cmap 'gray' on [0, 1], or RGB) without ticks."""
    arr = to_numpy_image(img)
    artist = ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0.0, vmax=1.0)
    _no_ticks(ax)
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


def _map_2d(values: ImageLike) -> np.ndarray:
    """A 2-D float numpy map; singleton dimensions (e.g. 1 x H x W) are dropped."""
    arr = _as_array(values)
    if arr.ndim > 2:
        arr = arr.squeeze()
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D map (H x W), got shape {tuple(values.shape)}")
    return arr


def _vmax(arr: np.ndarray, vmax: float | None) -> float:
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
    arr = _map_2d(values)
    m = _vmax(arr, vmax)
    artist = ax.imshow(arr, cmap=cmap, vmin=-m, vmax=m)
    _colorbar(ax, artist, cbar_label)
    _no_ticks(ax)
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
    arr = _resize_nearest(_map_2d(values), grey.shape)
    ax.imshow(grey, cmap="gray", vmin=0.0, vmax=1.0)
    if signed:
        m = _vmax(arr, None)
        artist = ax.imshow(arr, cmap="RdBu_r", vmin=-m, vmax=m, alpha=alpha)
    else:
        m = _vmax(np.clip(arr, 0.0, None), None)
        artist = ax.imshow(arr, cmap="inferno", vmin=0.0, vmax=m, alpha=alpha)
    if cbar_label is None:
        cbar_label = "contribution" if signed else "importance"
    _colorbar(ax, artist, cbar_label)
    _no_ticks(ax)
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
    arr = _as_array(maps)
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
        _no_ticks(ax)
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
    arr = _map_2d(values)
    if signed:
        artist = signed_heatmap(ax, arr, title, cbar_label=cbar_label)
    else:
        artist = ax.imshow(arr, cmap="Reds", vmin=0.0, vmax=_vmax(arr, None))
        _colorbar(ax, artist, cbar_label)
        _no_ticks(ax)
        if title is not None:
            ax.set_title(title)
    m = _vmax(arr, None)
    if fmt is not None:  # None: colours only (large grids)
        for (r, c), v in np.ndenumerate(arr):
            ax.text(c, r, fmt.format(v), ha="center", va="center",
                    color="white" if abs(v) > 0.6 * m else "black")
    return artist


def contribution_figure(image: ImageLike, maps: ImageLike, contributions: Sequence[float], *,
                        labels: Sequence[str], title: str, ncols: int = 3,
                        frames: dict[int, str] | None = None) -> Figure:
    """An input, its K feature maps titled with their contributions, and the contributions as
    a grid of numbers (paper 1's Fig. 3 layout). Maps share one colour scale."""
    arr, values = _as_array(maps), np.asarray(contributions, dtype=np.float32)
    k = len(arr)
    nrows = math.ceil(k / ncols)
    fig = plt.figure(figsize=(2.2 + 1.5 * ncols + 2.8, 1.6 * nrows + 0.8))
    grid = fig.add_gridspec(nrows, ncols + 2, width_ratios=[1.4] + [1] * ncols + [1.8])
    show_image(fig.add_subplot(grid[:, 0]), image, "input")
    top = float(arr.max()) if arr.max() > 0 else 1.0
    for i in range(k):
        ax = fig.add_subplot(grid[i // ncols, 1 + i % ncols])
        ax.imshow(arr[i], cmap="viridis", vmin=0.0, vmax=top)
        _no_ticks(ax)
        ax.set_title(f"{labels[i]}: {values[i]:+.2f}")
        if frames and i in frames:
            frame(ax, frames[i])
    number_grid(fig.add_subplot(grid[:, -1]), values.reshape(nrows, -1)
                if k % ncols == 0 else values[None], "contributions")
    fig.suptitle(title)
    return fig


def framed_rows(images: ImageLike, maps: ImageLike, frames: Sequence[dict[int, str]], *,
                row_labels: Sequence[str], col_labels: Sequence[str], title: str,
                size: float = 0.95) -> Figure:
    """One row per group (e.g. class): an image, then its K maps with coloured frames
    (paper 1's Fig. 4: rank-1 map red, rank-2 blue). Each row has its own colour scale."""
    imgs, arr = _as_array(images), _as_array(maps)
    rows, k = arr.shape[:2]
    fig, axes = plt.subplots(rows, k + 1, squeeze=False,
                             figsize=(size * (k + 1) + 0.6, size * rows + 0.8))
    for r in range(rows):
        show_image(axes[r, 0], imgs[r])
        axes[r, 0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center")
        top = float(arr[r].max()) if arr[r].max() > 0 else 1.0
        for i in range(k):
            ax = axes[r, i + 1]
            ax.imshow(arr[r, i], cmap="viridis", vmin=0.0, vmax=top)
            _no_ticks(ax)
            if r == 0:
                ax.set_title(col_labels[i])
            if i in frames[r]:
                frame(ax, frames[r][i], width=3)
    axes[0, 0].set_title("mean image")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def maps_over_image_rows(image: ImageLike, maps: Sequence[ImageLike], titles: Sequence[str], *,
                         title: str, first: ImageLike | None = None, first_title: str = "",
                         first_label: str = "importance", cbar_label: str = "contribution ratio",
                         size: float = 2.2) -> Figure:
    """Several maps of one image over its grey version, twice (paper 3's Fig. 6 and 7).

    Top row: the input, then each map's positive part as a heat map from 0 (Fig. 6); bottom
    row: ``first`` (e.g. Grad-CAM, unsigned; hidden when ``None``), then each map signed, red
    positive and blue negative, centred at zero (Fig. 7). Every map is resized to the image by
    nearest neighbour (each cell a visible block) and has its own colour bar.
    """
    if len(maps) != len(titles):
        raise ValueError(f"{len(titles)} titles for {len(maps)} maps")
    k = len(maps)
    fig, axes = plt.subplots(2, k + 1, squeeze=False,
                             figsize=(size * (k + 1) + 0.8, 2 * size + 0.7))
    show_image(axes[0, 0], image, "input")
    if first is None:
        axes[1, 0].set_visible(False)
    else:
        heatmap_over_image(axes[1, 0], image, first, first_title, signed=False,
                           cbar_label=first_label)
    for i, (values, name) in enumerate(zip(maps, titles, strict=True)):
        arr = _map_2d(values)
        heatmap_over_image(axes[0, i + 1], image, np.clip(arr, 0.0, None), f"{name}: positive",
                           signed=False, cbar_label=cbar_label)
        heatmap_over_image(axes[1, i + 1], image, arr, f"{name}: signed", signed=True,
                           cbar_label=cbar_label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def signed_rgb(values: ImageLike, vmax: float | None = None) -> np.ndarray:
    """A signed map with one value per input element (C x H x W, C = 1 or 3) as an image in
    [0, 1] with 0 at mid-grey: ``0.5 + values / (2 vmax)``, ``vmax = max |values|`` unless
    given (the usual way to show Guided Backpropagation's response maps as they are)."""
    arr = _as_array(values)
    return to_numpy_image(0.5 + arr / (2 * _vmax(arr, vmax)))


# kind of a panel_grid cell -> (colour map, colour-bar label); None: no colour bar
PANEL_KINDS = {"image": None, "signed_rgb": ("gray", "channel / max |map|"),
               "signed": ("RdBu_r", "map / max |map|"), "unsigned": ("inferno", "map / max"),
               "jet": ("jet", "jet colour = weight (min -> max)")}


def panel_grid(cells: Sequence[Sequence[tuple[str, ImageLike] | None]], *,
               col_titles: Sequence[str], title: str, row_labels: Sequence[str] | None = None,
               size: float = 1.25, fig: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """Maps of several kinds on a grid, one method per column (paper 2's Fig. 10 layout), with
    one colour bar under each column that has a colour map.

    ``cells[r][c]`` is ``(kind, values)`` (or ``None``: an empty panel), kind one of
    :data:`PANEL_KINDS`: ``"image"`` an image in [0, 1] shown as it is; ``"signed_rgb"`` a
    signed C x H x W map through :func:`signed_rgb` (grey = 0; its grey colour bar reads each
    channel); ``"signed"`` an
    H x W map divided by its max |value|, 'RdBu_r' on [-1, 1] (white = 0); ``"unsigned"`` an
    H x W map >= 0 divided by its max, 'inferno' on [0, 1]; ``"jet"`` an RGB visual map made
    with the jet colours (paper 2's CAM procedure), shown as it is, with a jet colour bar.
    Every map is scaled to its own maximum: the grid compares shapes, not magnitudes. A
    column's colour bar follows the kind of its last non-empty cell; an ``"image"`` column gets
    an invisible one, so that all columns line up. ``fig``: draw into this
    (sub)figure instead of a new one (e.g. the top of a figure with ``fig.subfigures``).
    """
    rows, cols = len(cells), len(col_titles)
    if any(len(row) != cols for row in cells):
        raise ValueError(f"every row needs {cols} cells, one per column title")
    if fig is None:
        fig = plt.figure(layout="constrained", figsize=(size * cols + 0.3, size * rows + 1.2))
    axes = fig.subplots(rows, cols, squeeze=False)
    kinds: dict[int, str] = {}
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            ax = axes[r, c]
            _no_ticks(ax)
            if r == 0:
                ax.set_title(col_titles[c], fontsize=8)
            if c == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[r], fontsize=8)
            if cell is None:
                ax.set_frame_on(False)
                continue
            kind, values = cell
            if kind not in PANEL_KINDS:
                raise ValueError(f"kind must be one of {list(PANEL_KINDS)}, not {kind!r}")
            if kind in ("image", "jet"):
                img = to_numpy_image(values)
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0)
            elif kind == "signed_rgb":
                ax.imshow(signed_rgb(values))
            else:
                arr = _map_2d(values)
                scale = _vmax(arr if kind == "signed" else np.clip(arr, 0.0, None), None)
                ax.imshow(arr / scale, cmap=PANEL_KINDS[kind][0],
                          vmin=-1.0 if kind == "signed" else 0.0, vmax=1.0)
            kinds[c] = kind
    for c, kind in kinds.items():
        cmap, label = PANEL_KINDS[kind] or ("gray", "")
        lo = -1.0 if kind in ("signed", "signed_rgb") else 0.0
        mappable = plt.cm.ScalarMappable(plt.Normalize(lo, 1.0), cmap=cmap)
        bar = fig.colorbar(mappable, ax=axes[:, c].tolist(), location="bottom", fraction=0.05,
                           pad=0.02, ticks=[lo, 0.0, 1.0] if lo < 0 else [lo, 1.0])
        bar.set_label(label, fontsize=6)
        bar.ax.tick_params(labelsize=6)
        if PANEL_KINDS[kind] is None:  # keeps the column's layout, shows nothing
            bar.ax.set_visible(False)
    fig.suptitle(title)
    return fig


def class_sum_grid(ax: Axes, sums: ImageLike, row_labels: Sequence[str],
                   classes: Sequence[str], *, label: int | None = None,
                   title: str | None = None) -> AxesImage:
    """Rows of one number per class (e.g. each method's class sums of its visual maps, paper 2,
    4.7), each row centred at its mean and divided by its largest deviation, printed in the
    cells: only the order within a row matters for Eq. 13, and this keeps it visible even
    when every sum is large and positive. The largest of each row (the class the sums would
    predict) is framed black, the true class ``label`` is written in red."""
    arr = _as_array(sums)
    if arr.ndim != 2 or arr.shape != (len(row_labels), len(classes)):
        raise ValueError(f"sums must be {len(row_labels)} x {len(classes)} (rows x classes), "
                         f"got {arr.shape}")
    centred = arr - arr.mean(1, keepdims=True)
    spread = np.abs(centred).max(1, keepdims=True)
    centred = np.where(spread > 0, centred / np.where(spread > 0, spread, 1.0), 0.0)
    artist = number_grid(ax, centred, title, fmt="{:+.2f}",
                         cbar_label="(sum - row mean) / max |sum - row mean|")
    ax.set_aspect("auto")
    ax.set_xticks(range(len(classes)), classes, rotation=30, fontsize=7)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=7)
    for r, c in enumerate(arr.argmax(1)):
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="black", lw=2))
    if label is not None:
        ax.get_xticklabels()[label].set_color("red")
    return artist
