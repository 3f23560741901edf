"""The multi-panel figures of the notebooks, built on :mod:`xai_helpers.plots`.

Paper 1's contribution figure (notebook 01), framed rows of maps (notebook 02), CAV's maps
over the image at points (1)-(5) (paper 3's Fig. 6-7, notebook 04), and the comparison panels
of notebook 06 (paper 2's Fig. 10, class sums). Same conventions as :mod:`xai_helpers.plots`:
every figure titled, every colour bar labelled, signed maps centred at zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from .plots import (
    ImageLike,
    as_array,
    frame,
    heatmap_over_image,
    map_2d,
    no_ticks,
    number_grid,
    show_image,
    to_numpy_image,
    vmax_of,
)

__all__ = ["contribution_figure", "framed_rows", "maps_over_image_rows", "signed_rgb",
           "PANEL_KINDS", "panel_grid_figsize", "panel_grid", "class_sum_grid", "interval_panels"]


def contribution_figure(image: ImageLike, maps: ImageLike, contributions: Sequence[float], *,
                        labels: Sequence[str], title: str, ncols: int = 3,
                        frames: dict[int, str] | None = None) -> Figure:
    """An input, its K feature maps titled with their contributions, and the contributions as
    a grid of numbers (paper 1's Fig. 3 layout). Maps share one colour scale."""
    arr, values = as_array(maps), np.asarray(contributions, dtype=np.float32)
    k = len(arr)
    nrows = math.ceil(k / ncols)
    fig = plt.figure(figsize=(2.2 + 1.5 * ncols + 2.8, 1.6 * nrows + 0.8))
    grid = fig.add_gridspec(nrows, ncols + 2, width_ratios=[1.4] + [1] * ncols + [1.8])
    show_image(fig.add_subplot(grid[:, 0]), image, "input")
    top = float(arr.max()) if arr.max() > 0 else 1.0
    for i in range(k):
        ax = fig.add_subplot(grid[i // ncols, 1 + i % ncols])
        ax.imshow(arr[i], cmap="viridis", vmin=0.0, vmax=top)
        no_ticks(ax)
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
    imgs, arr = as_array(images), as_array(maps)
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
            no_ticks(ax)
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
        arr = map_2d(values)
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
    arr = as_array(values)
    return to_numpy_image(0.5 + arr / (2 * vmax_of(arr, vmax)))


# kind of a panel_grid cell -> (colour map, colour-bar label); None: no colour bar
PANEL_KINDS = {"image": None, "signed_rgb": ("gray", "each channel /\nmax |map|"),
               "signed": ("RdBu_r", "map / max |map|"), "unsigned": ("inferno", "map / max"),
               "jet": ("jet", "jet colour\n(min -> max)")}
PANEL_FONTSIZE = 10  # panel_grid's text: at the notebooks' 80 dpi, 8.3 pt on a 96 px/inch screen
PANEL_SIZE = 1.25  # inches per panel: a colour-bar label at PANEL_FONTSIZE fits under it


def panel_grid_figsize(rows: int, cols: int, size: float = PANEL_SIZE,
                       fontsize: float = PANEL_FONTSIZE) -> tuple[float, float]:
    """Width and height (inches) that :func:`panel_grid` needs for ``rows`` x ``cols`` square
    panels of ``size`` inches, with its two-line column titles, colour bars and suptitle: its
    own default figure size, and the height to give a subfigure it draws into (a taller one
    leaves an empty band, since the panels stay square)."""
    text = fontsize / 72  # one line of text, inches
    # per panel: its size and the gaps between panels; beyond: suptitle, two-line column
    # titles, the colour bars with their ticks and two-line labels, row labels
    return cols * (size + 0.09) + 0.1 + 2 * text, rows * (size + 0.1) + 0.1 + 9 * text


def panel_grid(cells: Sequence[Sequence[tuple[str, ImageLike] | None]], *,
               col_titles: Sequence[str], title: str, row_labels: Sequence[str] | None = None,
               size: float = PANEL_SIZE, fig: Figure | SubFigure | None = None,
               fontsize: float = PANEL_FONTSIZE) -> Figure | SubFigure:
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
    (sub)figure instead of a new one (e.g. the top of a figure with ``fig.subfigures``; give
    it the height of :func:`panel_grid_figsize`). ``fontsize``: of the column titles, row
    labels, colour-bar labels and ticks.
    """
    rows, cols = len(cells), len(col_titles)
    if any(len(row) != cols for row in cells):
        raise ValueError(f"every row needs {cols} cells, one per column title")
    if fig is None:
        fig = plt.figure(layout="constrained",
                         figsize=panel_grid_figsize(rows, cols, size, fontsize))
    axes = fig.subplots(rows, cols, squeeze=False)
    kinds: dict[int, str] = {}
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            ax = axes[r, c]
            no_ticks(ax)
            if r == 0:
                ax.set_title(col_titles[c], fontsize=fontsize)
            if c == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[r], fontsize=fontsize)
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
                arr = map_2d(values)
                scale = vmax_of(arr if kind == "signed" else np.clip(arr, 0.0, None), None)
                ax.imshow(arr / scale, cmap=PANEL_KINDS[kind][0],
                          vmin=-1.0 if kind == "signed" else 0.0, vmax=1.0)
            kinds[c] = kind
    for c, kind in kinds.items():
        cmap, label = PANEL_KINDS[kind] or ("gray", "")
        lo = -1.0 if kind in ("signed", "signed_rgb") else 0.0
        mappable = plt.cm.ScalarMappable(plt.Normalize(lo, 1.0), cmap=cmap)
        # shrink: the tick labels at the bar's ends stay within the column, so the panels
        # need no wider gaps between them
        bar = fig.colorbar(mappable, ax=axes[:, c].tolist(), location="bottom", fraction=0.05,
                           shrink=0.8, pad=0.02, ticks=[lo, 0.0, 1.0] if lo < 0 else [lo, 1.0])
        bar.set_label(label, fontsize=fontsize)
        bar.ax.tick_params(labelsize=fontsize)
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
    arr = as_array(sums)
    if arr.ndim != 2 or arr.shape != (len(row_labels), len(classes)):
        raise ValueError(f"sums must be {len(row_labels)} x {len(classes)} (rows x classes), "
                         f"got {arr.shape}")
    centred = arr - arr.mean(1, keepdims=True)
    spread = np.abs(centred).max(1, keepdims=True)
    centred = np.where(spread > 0, centred / np.where(spread > 0, spread, 1.0), 0.0)
    artist = number_grid(ax, centred, title, fmt="{:+.2f}",
                         cbar_label="(sum - row mean) / max |sum - row mean|")
    ax.set_aspect("auto")
    ax.set_xticks(range(len(classes)), classes, rotation=30, fontsize=9)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=9)
    for r, c in enumerate(arr.argmax(1)):
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="black", lw=2))
    if label is not None:
        ax.get_xticklabels()[label].set_color("red")
    return artist


def interval_panels(rows: Sequence[dict], labels: dict[str, str], directions: dict[str, bool],
                    *, title: str, ncols: int = 4) -> Figure:
    """One panel per measure: each method's value (dot) and interval (bar), methods top to
    bottom in the order of ``rows`` (:func:`xai_helpers.ranking.rank_table`'s rows). The
    methods of rank 1 are drawn in red, values that hold by construction as hollow grey
    squares (not ranked); each panel says which direction is better."""
    measures = [m for m in directions if any(m in r for r in rows)]
    nrows = math.ceil(len(measures) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 0.28 * len(rows) * nrows + 1.4),
                             sharey=True, squeeze=False, layout="constrained")
    y = np.arange(len(rows))[::-1]
    for ax, measure in zip(axes.flat, measures, strict=False):
        for yi, row in zip(y, rows, strict=True):
            if measure not in row:
                continue
            iv, rank = row[measure], row.get("rank_" + measure)
            color = "grey" if rank is None else ("C3" if rank == 1 else "C0")
            ax.plot([iv.low, iv.high], [yi, yi], c=color, lw=2)
            ax.plot(iv.value, yi, "s" if rank is None else "o", c=color,
                    mfc="none" if rank is None else color, ms=5)
        better = "higher" if directions[measure] else "lower"
        ax.set_title(f"{measure}\n({better} is better)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes.flat[len(measures):]:
        ax.axis("off")
    axes[0, 0].set_yticks(y, [labels.get(r["method"], r["method"]) for r in rows])
    for ax in axes[:, 0]:
        ax.set_ylabel("method")
    for ax in axes[-1]:
        ax.set_xlabel("value, 95% interval")
    fig.suptitle(title, fontsize=10)
    return fig
