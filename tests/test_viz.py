"""Tests of xai_helpers.viz: colour limits, colour bars, grid layout, image conversion."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from xai_helpers import viz  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


@pytest.fixture(autouse=True)
def _close_all():
    yield
    plt.close("all")


def test_signed_heatmap_norm_is_centred_at_zero(ax):
    values = torch.tensor([[0.5, -2.0], [1.0, 0.0]])
    im = viz.signed_heatmap(ax, values, title="map")
    assert im.get_clim() == pytest.approx((-2.0, 2.0))
    assert ax.get_title() == "map"


def test_signed_heatmap_honours_explicit_vmax(ax):
    im = viz.signed_heatmap(ax, np.array([[0.5, -2.0], [1.0, 0.0]]), vmax=0.25)
    assert im.get_clim() == pytest.approx((-0.25, 0.25))


def test_signed_heatmap_all_zero_map_uses_unit_limits(ax):
    im = viz.signed_heatmap(ax, np.zeros((4, 4)))
    assert im.get_clim() == pytest.approx((-1.0, 1.0))
    ax.figure.canvas.draw()  # renders without a division by zero


def test_signed_heatmap_colour_bar_has_label(ax):
    im = viz.signed_heatmap(ax, np.eye(3), cbar_label="filter contribution")
    assert im.colorbar is not None
    assert im.colorbar.ax.get_ylabel() == "filter contribution"


def test_image_grid_layout_hides_extra_panels_and_sets_titles():
    n, ncols = 7, 3
    titles = [f"#{i}" for i in range(n)]
    fig = viz.image_grid(torch.rand(n, 1, 8, 8), titles=titles, ncols=ncols, title="grid")
    axes = fig.axes
    assert len(axes) == math.ceil(n / ncols) * ncols == 9
    assert [a.get_visible() for a in axes] == [True] * n + [False] * 2
    assert [a.get_title() for a in axes[:n]] == titles
    assert fig._suptitle.get_text() == "grid"


def test_image_grid_accepts_a_list_of_rgb_images():
    fig = viz.image_grid([np.random.rand(3, 5, 5) for _ in range(2)], title="rgb")
    assert len(fig.axes) == 2  # ncols shrinks to N
    assert fig.axes[0].get_images()[0].get_array().shape == (5, 5, 3)


@pytest.mark.parametrize(("img", "shape"), [
    (torch.rand(1, 28, 28), (28, 28)),       # CHW grey
    (torch.rand(3, 32, 32), (32, 32, 3)),    # CHW RGB
    (torch.rand(28, 28), (28, 28)),          # HW
    (np.random.rand(32, 32, 3), (32, 32, 3)),  # HWC RGB
    (np.random.rand(28, 28, 1), (28, 28)),   # HWC grey
    (torch.rand(1, 1, 8, 8), (8, 8)),        # batch of one
])
def test_to_numpy_image_shapes(img, shape):
    arr = viz.to_numpy_image(img)
    assert isinstance(arr, np.ndarray)
    assert arr.shape == shape
    assert arr.min() >= 0.0 and arr.max() <= 1.0


def test_to_numpy_image_clips_and_detaches():
    img = (2 * torch.rand(1, 4, 4, requires_grad=True) - 0.5)
    arr = viz.to_numpy_image(img)
    assert arr.min() >= 0.0 and arr.max() <= 1.0


def test_to_numpy_image_rejects_two_channels():
    with pytest.raises(ValueError):
        viz.to_numpy_image(torch.rand(2, 8, 8))


def test_show_image_grey_uses_unit_grey_scale(ax):
    im = viz.show_image(ax, torch.rand(1, 8, 8), title="x")
    assert im.get_cmap().name == "gray"
    assert im.get_clim() == (0.0, 1.0)
    assert ax.get_xticks().size == 0 and ax.get_yticks().size == 0


def test_heatmap_over_image_upsamples_map_to_image_size(ax):
    image = torch.rand(1, 28, 28)
    values = torch.arange(49, dtype=torch.float32).reshape(7, 7) - 24
    top = viz.heatmap_over_image(ax, image, values, title="over")
    arr = np.asarray(top.get_array())
    assert arr.shape == (28, 28)
    np.testing.assert_array_equal(arr, np.repeat(np.repeat(values.numpy(), 4, 0), 4, 1))
    assert top.get_clim() == pytest.approx((-24.0, 24.0))
    assert ax.get_images()[0].get_array().shape == (28, 28)  # grey image underneath
    assert top.colorbar.ax.get_ylabel() == "contribution"


def test_heatmap_over_image_unsigned_starts_at_zero_and_greys_rgb(ax):
    top = viz.heatmap_over_image(ax, torch.rand(3, 8, 8), torch.rand(8, 8) + 1, signed=False,
                                 cbar_label="Grad-CAM")
    assert top.get_clim()[0] == 0.0
    assert ax.get_images()[0].get_array().shape == (8, 8)
    assert top.colorbar.ax.get_ylabel() == "Grad-CAM"


def test_frame_sets_spine_colour_and_width(ax):
    assert viz.frame(ax, color="blue", width=3) is ax
    for spine in ax.spines.values():
        assert spine.get_visible()
        assert spine.get_edgecolor() == to_rgba("blue")
        assert spine.get_linewidth() == 3


def test_setup_sets_dpi():
    with matplotlib.rc_context():
        viz.setup(dpi=72)
        assert plt.rcParams["figure.dpi"] == 72
        assert plt.rcParams["savefig.dpi"] == 72


def test_class_examples_shows_only_that_class():
    from xai_helpers.data import ImageData

    labels = torch.tensor([0, 1, 1, 2, 1, 0])
    images = labels.float().view(-1, 1, 1, 1).expand(-1, 1, 4, 4) / 2  # pixel = label / 2
    d = ImageData("toy", "test", images, labels, ("a", "b", "c"), "synthetic",
                  torch.ones(6, dtype=torch.bool), full=True)
    fig = viz.class_examples(d, 1, n=2)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 2 and "2 images of class 1 (b)" in fig._suptitle.get_text()
    assert all(np.allclose(ax.get_images()[0].get_array(), 0.5) for ax in shown)
    with pytest.raises(ValueError, match="class 5 is not in 0..2"):
        viz.class_examples(d, 5)
    plt.close("all")


def test_map_grid_frames_and_shared_scale():
    maps = torch.arange(9 * 4.0).view(9, 2, 2)
    fig = viz.map_grid(maps, [str(i) for i in range(9)], frames={4: "red", 7: "blue"},
                       title="nine maps")
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 9
    assert all(ax.get_images()[0].get_clim() == (0.0, 35.0) for ax in panels)
    assert to_rgba(panels[4].spines["top"].get_edgecolor()) == to_rgba("red")
    assert to_rgba(panels[7].spines["left"].get_edgecolor()) == to_rgba("blue")
    assert any(ax.get_ylabel() == "activation" for ax in fig.axes)
    plt.close(fig)


def test_number_grid_prints_every_value():
    fig, ax = plt.subplots()
    values = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.25, -1.0], [2.0, 0.1, -0.1]])
    artist = viz.number_grid(ax, values, "contributions")
    assert artist.get_clim() == (-3.25, 3.25)
    assert sorted(t.get_text() for t in ax.texts) == sorted(
        f"{v:.2f}" for v in values.flatten().tolist())
    plt.close(fig)


def test_contribution_figure_titles_maps_with_their_contributions():
    maps = torch.rand(9, 7, 7)
    values = torch.linspace(-1, 1, 9)
    fig = viz.contribution_figure(torch.rand(1, 28, 28), maps, values.tolist(),
                                  labels=[f"m{i}" for i in range(9)], title="Fig. 3",
                                  frames={8: "red"})
    titles = [ax.get_title() for ax in fig.axes]
    assert "m0: -1.00" in titles and "m8: +1.00" in titles and "input" in titles
    assert fig._suptitle.get_text() == "Fig. 3"
    plt.close(fig)


def test_framed_rows_puts_frames_where_asked():
    fig = viz.framed_rows(torch.rand(2, 1, 8, 8), torch.rand(2, 4, 3, 3),
                          [{1: "red", 2: "blue"}, {0: "red"}], row_labels=["a", "b"],
                          col_labels=list("wxyz"), title="Fig. 4")
    axes = np.array(fig.axes).reshape(2, 5)
    assert to_rgba(axes[0, 2].spines["top"].get_edgecolor()) == to_rgba("red")
    assert to_rgba(axes[0, 3].spines["top"].get_edgecolor()) == to_rgba("blue")
    assert to_rgba(axes[1, 1].spines["top"].get_edgecolor()) == to_rgba("red")
    assert axes[0, 1].get_title() == "w"
    plt.close(fig)


def test_number_grid_for_counts_starts_at_zero():
    fig, ax = plt.subplots()
    artist = viz.number_grid(ax, torch.tensor([[3.0, 0.0], [1.0, 8.0]]), "counts", fmt="{:.0f}",
                             signed=False, cbar_label="images")
    assert artist.get_clim() == (0.0, 8.0) and len(ax.texts) == 4
    plt.close(fig)


def test_signed_rgb_puts_zero_at_mid_grey():
    values = torch.tensor([[[-2.0, 0.0], [1.0, 2.0]]]).expand(3, 2, 2)
    rgb = viz.signed_rgb(values)
    assert rgb.shape == (2, 2, 3)
    assert rgb[0, 0].tolist() == [0.0] * 3 and rgb[0, 1].tolist() == [0.5] * 3
    assert rgb[1, 1].tolist() == [1.0] * 3 and rgb[1, 0] == pytest.approx([0.75] * 3)


def test_panel_grid_scales_each_map_and_lines_up_colour_bars():
    x = torch.rand(3, 4, 4)
    cells = [[("image", x), ("signed", 3 * (x[0] - 0.5)), ("unsigned", 5 * x[0]), None]]
    fig = viz.panel_grid(cells, col_titles=["a", "b", "c", "d"], title="grid", row_labels=["r"])
    axes = fig.axes[:4]
    assert [ax.get_title() for ax in axes] == ["a", "b", "c", "d"]
    assert np.abs(axes[1].images[0].get_array()).max() == pytest.approx(1.0)
    assert axes[1].images[0].get_clim() == (-1.0, 1.0)
    assert axes[2].images[0].get_array().max() == pytest.approx(1.0)
    bars = fig.axes[4:]  # image (hidden), signed, unsigned
    assert len(bars) == 3 and not bars[0].get_visible()
    assert bars[1].get_xlabel() == "map / max |map|"
    assert fig._suptitle.get_text() == "grid"
    with pytest.raises(ValueError, match="kind must be one of"):
        viz.panel_grid([[("nope", x)]], col_titles=["a"], title="t")
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        viz.panel_grid([[("image", x)]], col_titles=["a", "b"], title="t")


def test_panel_grid_text_is_readable_and_its_figure_size_leaves_no_empty_band():
    x = torch.rand(3, 32, 32)
    cells = [[("image", x), ("signed", x[0] - 0.5), ("jet", x), ("signed_rgb", x - 0.5)]]
    titles = ["(a)\nimage", "(b)\nsigned", "(c)\njet", "(d)\nsigned RGB"]
    fig = viz.panel_grid(cells, col_titles=titles, title="one row", row_labels=["r"])
    assert tuple(fig.get_size_inches()) == pytest.approx(viz.panel_grid_figsize(1, 4))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels, bars = fig.axes[:4], [a for a in fig.axes[4:] if a.get_visible()]
    texts = [ax.title for ax in panels] + [panels[0].yaxis.label]
    texts += [b.xaxis.label for b in bars] + [t for b in bars for t in b.get_xticklabels()]
    assert min(t.get_fontsize() for t in texts) >= 8
    # the panels stay square; a figure taller than they need would leave an empty band
    top_of_titles = max(ax.title.get_window_extent(renderer).y1 for ax in panels)
    band = (fig._suptitle.get_window_extent(renderer).y0 - top_of_titles) / fig.dpi
    assert band < 0.2
    plt.close(fig)
    parent = plt.figure(figsize=(viz.panel_grid_figsize(2, 4)[0], 6), layout="constrained")
    top, _ = parent.subfigures(2, 1, height_ratios=[viz.panel_grid_figsize(2, 4)[1], 1])
    assert viz.panel_grid([cells[0]] * 2, col_titles=titles, title="top", fig=top) is top
    plt.close(parent)


def test_class_sum_grid_frames_the_largest_sum_of_each_row(ax):
    sums = torch.tensor([[1.0, 5.0, 2.0], [9.0, 8.0, 7.0]])
    viz.class_sum_grid(ax, sums, ["m1", "m2"], ["a", "b", "c"], label=2, title="sums")
    frames = [(p.get_x() + 0.5, p.get_y() + 0.5) for p in ax.patches]
    assert frames == [(1.0, 0.0), (0.0, 1.0)]
    assert to_rgba(ax.get_xticklabels()[2].get_color()) == to_rgba("red")
    assert ax.images[0].get_array()[1].tolist() == pytest.approx([1.0, 0.0, -1.0])
    with pytest.raises(ValueError, match="rows x classes"):
        viz.class_sum_grid(ax, sums.T, ["m1", "m2"], ["a", "b", "c"])
