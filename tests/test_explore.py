"""Notebook 08's loaders: torchvision models by name (random weights offline, said so), your
own weights file (state_dict only; a pickled model refused), and images of any common form."""

from __future__ import annotations

import io

import pytest
import torch
import torchvision
from PIL import Image

from xai_helpers import explore, methods


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("XAI_DOWNLOAD", "0")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


def test_a_torchvision_name_gives_random_weights_offline_and_says_so():
    loaded = explore.load_model("resnet18", size=64)
    assert "RANDOM weights" in loaded.weights and len(loaded.classes) == 1000
    x = torch.rand(2, 3, 64, 64)
    assert loaded.model(x).shape == (2, 1000)
    with pytest.raises(ValueError, match="0-255"):  # the first layer checks the input
        loaded.model(x * 255)
    with pytest.raises(ValueError, match="neither a file nor a torchvision classifier"):
        explore.load_model("resnet1800")


def test_your_weights_file_loads_and_a_pickled_model_is_refused(tmp_path):
    net = torchvision.models.mobilenet_v3_small(weights=None, num_classes=3)
    torch.save(net.state_dict(), tmp_path / "mine.pt")
    loaded = explore.load_model(tmp_path / "mine.pt", classes=["a", "b", "c"], size=32,
                                builder=lambda: torchvision.models.mobilenet_v3_small(
                                    weights=None, num_classes=3))
    assert loaded.classes == ("a", "b", "c") and "your weights" in loaded.weights
    torch.save(net, tmp_path / "whole.pt")  # the model object: pickled code
    with pytest.raises(ValueError, match="cannot be loaded safely.*state_dict"):
        explore.load_model(tmp_path / "whole.pt", builder=lambda: net)
    with pytest.raises(ValueError, match="does not fit"):
        explore.load_model(tmp_path / "mine.pt",
                           builder=lambda: torchvision.models.mobilenet_v3_small(weights=None))
    with pytest.raises(ValueError, match="give builder"):
        explore.load_model(tmp_path / "mine.pt")


def _png(mode: str, size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128 if mode == "L" else (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_of_any_common_form(tmp_path):
    grey = explore.load_images(_png("L"), size=16)
    assert grey.shape == (1, 3, 16, 16) and torch.allclose(grey[0, 0], grey[0, 1])
    rgb = explore.load_images([_png("RGB"), _png("RGBA", (30, 40))], size=16)
    assert rgb.shape == (2, 3, 16, 16) and 0 <= rgb.min() and rgb.max() <= 1
    (tmp_path / "b.png").write_bytes(_png("RGB"))
    (tmp_path / "a.jpg").write_bytes(_png("L"))  # a PNG named .jpg: Pillow reads the content
    (tmp_path / "notes.txt").write_text("not an image")
    assert explore.load_images(tmp_path, size=8).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="not an image Pillow can read"):
        explore.load_images(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no PNG or JPEG"):
        explore.load_images(tmp_path / "empty")


def test_too_large_images_are_refused(monkeypatch):
    monkeypatch.setattr(explore, "MAX_PIXELS", 100)
    with pytest.raises(ValueError, match="more than 100"):
        explore.load_images(_png("RGB"))


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_the_series_methods_run_on_torchvision_models(name):
    """Every method that fits the architecture gives one map per image and class."""
    loaded = explore.load_model(name, size=32)
    x = torch.rand(2, 3, 32, 32)
    fits = methods.applicable(loaded.model)
    assert {"guided_backprop", "gradcam", "integrated_gradients", "occlusion"} <= set(fits)
    for method in fits:
        maps = methods.attribute(method, loaded.model, x, torch.tensor([1, 2]),
                                 **({"n_steps": 4} if method == "integrated_gradients" else {}))
        assert maps.shape[:2] == (2, 1) and maps.shape[-2:] == (32, 32), method
        assert torch.isfinite(maps).all(), method


def test_one_call_gives_every_applicable_map_and_its_curves():
    loaded = explore.load_model("resnet18", size=32)
    x = torch.rand(2, 3, 32, 32)
    result = explore.explain(loaded.model, x, which=["gradcam", "cwm", "occlusion"], steps=4)
    assert set(result.maps) == {"gradcam", "occlusion"}
    assert "GCM" in result.skipped["cwm"]  # says why CWM does not apply
    assert result.top5.shape == (2, 5) and torch.equal(result.target, result.top5[:, 0])
    assert set(result.measures) == {"gradcam", "occlusion", "random"}
    for areas in result.measures.values():
        assert 0 <= areas["deletion"] <= 1 and 0 <= areas["insertion"] <= 1
    fixed = explore.explain(loaded.model, x, target=3, which=["gradcam"], curves=False)
    assert fixed.target.tolist() == [3, 3] and fixed.measures == {}
