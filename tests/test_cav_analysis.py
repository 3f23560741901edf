"""Tests of paper 3's experiment helpers (seed 003): VGG-16 wrapper and loader, the points
(1)-(5), Grad-CAM, feature invalidation (section 5, Table 1), images and the upload widget."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from xai_helpers import cav, config, models, viz, widgets
from xai_helpers import cav_analysis as ca
from xai_helpers.hooks import capture

pytestmark = pytest.mark.usefixtures("one_thread")
CIFAR_POOLS = ["features.28", "features.21", "features.14", "features.7", "features.3"]
VGG16_POOLS = ["features.30", "features.23", "features.16", "features.9", "features.4"]


def no_hooks(model: nn.Module) -> bool:
    return not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                   for m in model.modules())


@pytest.fixture
def small() -> nn.Sequential:
    """conv -> ReLU -> 2x2 max pool -> flatten -> linear on 1 x 3 x 4 x 4 images."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(12, 4)).eval()


@pytest.fixture(scope="module")
def vgg_cifar() -> nn.Sequential:
    torch.manual_seed(0)
    return models.build("vgg_cifar10").eval()


# --------------------------------------------------------------------------- invalidation

def test_an_empty_mask_leaves_the_scores_unchanged_and_no_hook(vgg_cifar):
    x = torch.rand(2, 3, 32, 32)
    before = vgg_cifar(x)
    for layer, side in zip(CIFAR_POOLS, (1, 2, 4, 8, 16), strict=True):
        with ca.invalidate(vgg_cifar, layer, torch.zeros(side, side, dtype=torch.bool)):
            after = vgg_cifar(x)
        assert torch.allclose(before, after, rtol=1e-5, atol=1e-6)  # (rounding may differ)
    assert no_hooks(vgg_cifar)


def test_a_full_mask_zeroes_the_layer(small):
    x = torch.rand(2, 1, 4, 4)
    with ca.invalidate(small, "2", torch.ones(2, 2, dtype=torch.bool)), \
            capture(small, ["2"]) as store:
        scores = small(x)
    assert torch.equal(store["2"]["act"], torch.zeros(2, 3, 2, 2))
    assert torch.allclose(scores, small[4].bias.expand(2, 4))  # nothing but the bias is left
    assert no_hooks(small)


def test_a_partial_mask_zeroes_its_cells_in_every_channel_only(small):
    x = torch.rand(2, 1, 4, 4)
    with capture(small, ["2"]) as store:
        small(x)
    full = store["2"]["act"]
    mask = torch.tensor([[True, False], [False, False]])
    with ca.invalidate(small, "2", mask), capture(small, ["2"]) as store:
        small(x)
    out = store["2"]["act"]
    assert torch.equal(out[:, :, 0, 0], torch.zeros(2, 3))
    assert torch.equal(out[:, :, 1:, :], full[:, :, 1:, :])
    assert torch.equal(out[:, :, 0, 1], full[:, :, 0, 1])
    per_image = torch.zeros(2, 2, 2, dtype=torch.bool)
    per_image[1, 1, 1] = True  # N x H x W: only image 1
    with ca.invalidate(small, "2", per_image), capture(small, ["2"]) as store:
        small(x)
    assert torch.equal(store["2"]["act"][0], full[0])
    assert torch.equal(store["2"]["act"][1, :, 1, 1], torch.zeros(3))


def test_the_hook_is_removed_when_the_forward_pass_raises(vgg_cifar):
    mask = torch.ones(4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="batch axis"):
        with ca.invalidate(vgg_cifar, "features.14", mask):
            vgg_cifar(torch.rand(3, 32, 32))  # no batch axis: Normalize raises
    assert no_hooks(vgg_cifar)
    with pytest.raises(ValueError, match="does not fit"):
        with ca.invalidate(vgg_cifar, "features.14", torch.ones(5, 5, dtype=torch.bool)):
            vgg_cifar(torch.rand(1, 3, 32, 32))
    assert no_hooks(vgg_cifar)
    with pytest.raises(ValueError, match="no layer"):
        with ca.invalidate(vgg_cifar, "features.99", mask):
            pass


# --------------------------------------------------------------------------- masks and tables

def test_feature_masks_spots_and_object_minus_spots():
    ratio = torch.tensor([[0.5, -0.2], [0.1, 0.3]])
    spots = ca.feature_masks(ratio, 0.5, "spots")
    assert spots.tolist() == [[True, False], [False, True]]  # >= 0.25
    assert ca.feature_masks(ratio, 0.5, "object minus spots").tolist() == [[False, True],
                                                                           [True, False]]
    assert ca.feature_masks(ratio, 0.0).tolist() == [[True, False], [True, True]]  # all > 0
    assert ca.feature_masks(ratio, 1.0).tolist() == [[True, False], [False, False]]
    region = torch.tensor([[True, True], [False, False]])
    assert ca.feature_masks(ratio, 0.5, "spots", region).tolist() == [[True, False],
                                                                      [False, False]]
    assert ca.feature_masks(ratio, 0.5, "object minus spots", region).tolist() == \
        [[False, True], [False, False]]
    assert not ca.feature_masks(-ratio.abs(), 0.1).any()  # no positive ratio, no spot
    with pytest.raises(ValueError, match="mode"):
        ca.feature_masks(ratio, 0.5, "dog")
    with pytest.raises(ValueError, match="fraction"):
        ca.feature_masks(ratio, 1.5)


def test_top_rows_rank_and_the_table_1_layout():
    before = torch.tensor([1.0, 5.0, 3.0, 2.0, 0.5])
    after = torch.tensor([4.0, 1.0, 3.0, 2.0, 0.5])
    assert ca.top_rows(before, 2) == [(1, 1, 5.0), (2, 2, 3.0)]
    assert [ca.rank_of(before, c) for c in range(5)] == [4, 1, 2, 3, 5]
    names = ["a", "b", "c", "d", "e"]
    table = ca.top_table(before, after, names, k=2, track=[1, 4]).splitlines()
    assert "before" in table[0] and "after" in table[0] and "rank" in table[1]
    assert table[2].split() == ["1", "1", "b", "5.00", "|", "1", "0", "a", "4.00"]
    assert table[3].split() == ["2", "2", "c", "3.00", "|", "2", "2", "c", "3.00"]
    assert table[4].split() == ["...", "|", "..."]
    assert table[5].split() == ["|", "4", "1", "b", "1.00"]  # b fell from 1st to 4th
    assert table[6].split() == ["5", "4", "e", "0.50", "|", "5", "4", "e", "0.50"]
    assert len(table) == 7
    assert "..." not in ca.top_table(before, after, names, k=5, track=[1])


# --------------------------------------------------------------------------- models and points

def test_pool_points_of_vgg_cifar10_deepest_first_with_16_8_4_2_1_maps(vgg_cifar):
    assert ca.pool_points(vgg_cifar) == CIFAR_POOLS
    with torch.no_grad(), capture(vgg_cifar, CIFAR_POOLS) as store:
        vgg_cifar(torch.rand(1, 3, 32, 32))
    assert [store[p]["act"].shape[-1] for p in CIFAR_POOLS] == [1, 2, 4, 8, 16]
    with pytest.raises(ValueError, match="MaxPool2d"):
        ca.pool_points(nn.Sequential(nn.Conv2d(1, 1, 1)))


def test_the_vgg16_wrapper_has_the_stand_in_names_and_five_pools():
    with torch.device("meta"):  # no weights, no memory, no download
        vgg = ca.vgg16()
    stand_in = models.build("vgg_cifar10")
    assert [n for n, _ in vgg.named_children()] == [n for n, _ in stand_in.named_children()] \
        == ["normalize", "features", "avgpool", "flatten", "classifier"]
    assert ca.pool_points(vgg) == VGG16_POOLS
    assert isinstance(vgg.normalize, models.Normalize) and not vgg.training
    assert vgg.classifier[6].out_features == len(ca.IMAGENET_CLASSES) == 1000
    assert ca.IMAGENET_CLASSES[282] == "tiger cat" and ca.IMAGENET_CLASSES[242] == "boxer"
    assert ca.VGG16_FILE == "vgg16-397923af.pth"


def test_wrap_vgg_computes_torchvisions_forward_on_normalised_images():
    torch.manual_seed(0)
    fake = nn.Module()  # what torchvision's VGG.forward reads: features, avgpool, classifier
    fake.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(2))
    fake.avgpool = nn.AdaptiveAvgPool2d(2)
    fake.classifier = nn.Sequential(nn.Linear(16, 5))
    x = torch.rand(2, 3, 8, 8)
    mean = torch.tensor(ca.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(ca.IMAGENET_STD).view(1, 3, 1, 1)
    expected = torchvision.models.VGG.forward(fake, (x - mean) / std)
    assert torch.allclose(ca.wrap_vgg(fake)(x), expected, atol=1e-6)


def test_load_vgg16_imagenet_offline_returns_none_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config, "DATA_ROOT", tmp_path / "data")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("XAI_DOWNLOAD", "0")
    assert ca.load_vgg16_imagenet() is None
    said = capsys.readouterr().out
    assert "not available" in said and "XAI_DOWNLOAD=0" in said and ca.VGG16_FILE in said


def test_load_vgg16_imagenet_reads_the_local_file_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config, "DATA_ROOT", tmp_path / "data")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("XAI_DOWNLOAD", "0")
    monkeypatch.setattr(ca, "vgg16", lambda state: ("built from", state))  # no 528 MB here
    cached = tmp_path / "hub" / "checkpoints" / ca.VGG16_FILE
    cached.parent.mkdir(parents=True)
    torch.save({"w": torch.ones(1)}, cached)
    assert ca.load_vgg16_imagenet()[1]["w"].item() == 1.0  # the cache when data/ has none
    local = tmp_path / "data" / ca.VGG16_FILE
    local.parent.mkdir(parents=True)
    torch.save({"w": torch.full((1,), 2.0)}, local)
    assert ca.load_vgg16_imagenet()[1]["w"].item() == 2.0
    local.write_bytes(b"not a checkpoint")  # unreadable: said, and the cache is used
    assert ca.load_vgg16_imagenet()[1]["w"].item() == 1.0
    capsys.readouterr()


def test_point_maps_sum_the_channels_of_the_ratios(vgg_cifar):
    x = torch.rand(1, 3, 32, 32)
    maps = ca.point_maps(vgg_cifar, x, 3, CIFAR_POOLS)
    ratios = cav.explain(vgg_cifar, x, 3, CIFAR_POOLS)
    for p, side in zip(CIFAR_POOLS, (1, 2, 4, 8, 16), strict=True):
        assert maps[p].shape == (side, side)
        assert torch.allclose(maps[p], ratios[p][0].sum(0))
    with pytest.raises(ValueError, match="one image"):
        ca.point_maps(vgg_cifar, torch.rand(2, 3, 32, 32), 3, CIFAR_POOLS)


def test_grad_cam_at_a_point_has_its_resolution_and_keeps_the_mode(vgg_cifar):
    vgg_cifar.train()
    try:
        cam = ca.grad_cam(vgg_cifar, torch.rand(1, 3, 32, 32), "features.21", 2)
        assert vgg_cifar.training
    finally:
        vgg_cifar.eval()
    assert cam.shape == (2, 2) and bool((cam >= 0).all())
    assert ca.grad_cam(vgg_cifar, torch.rand(1, 3, 32, 32), "features.28", 2).shape == (1, 1)
    assert no_hooks(vgg_cifar)


# --------------------------------------------------------------------------- images, widgets

def png_bytes(width: int, height: int) -> bytes:
    """Red left of column 10, blue from there on."""
    img = Image.new("RGB", (width, height), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, height))
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


def test_load_image_takes_the_central_square_resized():
    x = ca.load_image(png_bytes(40, 20), 16)  # central square: columns 10-29, all blue
    assert x.shape == (1, 3, 16, 16) and x.dtype == torch.float32
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(x.mean((0, 2, 3)), torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
    photo = ca.sample_photo(32)
    assert photo.shape == (1, 3, 32, 32) and 0 <= photo.min() < photo.max() <= 1


def test_uploaded_file_reads_ipywidgets_7_and_8_values():
    content = png_bytes(12, 12)
    assert widgets.uploaded_file(()) is None and widgets.uploaded_file({}) is None
    v8 = ({"name": "a.png", "type": "image/png", "size": 3, "content": memoryview(content)},)
    assert widgets.uploaded_file(v8) == content
    v7 = {"a.png": {"metadata": {"name": "a.png"}, "content": content}}
    assert widgets.uploaded_file(v7) == content
    assert ca.load_image(widgets.uploaded_file(v8), 8).shape == (1, 3, 8, 8)
    assert widgets.upload_button().accept == "image/*"
    slider = widgets.choice_slider([("(1) deep", 0), ("(2) less deep", 1)], description="point")
    assert slider.value == 0 and slider.options[1] == ("(2) less deep", 1)


def test_maps_over_image_rows_draws_two_rows_with_labelled_bars():
    maps = [torch.tensor([[0.5, -0.5], [0.1, 0.0]]), torch.zeros(4, 4)]
    fig = viz.maps_over_image_rows(torch.rand(3, 8, 8), maps, ["(1)", "(2)"], title="t",
                                   first=torch.ones(2, 2), first_title="Grad-CAM")
    titles = [ax.get_title() for ax in fig.axes]
    assert {"input", "Grad-CAM", "(1): positive", "(1): signed", "(2): signed"} <= set(titles)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 5 and all(b.get_ylabel() for b in bars)
    plt.close(fig)
    fig = viz.maps_over_image_rows(torch.rand(3, 8, 8), maps[:1], ["(1)"], title="t")
    assert not fig.axes[2].get_visible()  # no first map: its panel is hidden
    plt.close(fig)
