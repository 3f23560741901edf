"""Notebook 08's loaders: torchvision models by name (random weights offline, said so), your
own weights file (state_dict only; a pickled model refused), and images of any common form."""

from __future__ import annotations

import io

import pytest
import torch
import torchvision
from PIL import Image

from xai_helpers import cav, class_maps, data, explore, faithfulness, methods


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
    control = explore.load_model("resnet18", size=64, pretrained=False)
    assert "RANDOM weights" in control.weights and "pretrained=False" in control.weights
    with pytest.raises(ValueError, match="neither a file.*nor a torchvision classifier"):
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
    notes = []
    grey = explore.load_images(_png("L"), size=16, notes=notes)
    assert grey.shape == (1, 3, 16, 16) and torch.allclose(grey[0, 0], grey[0, 1])
    assert "grey image, made RGB" in notes[0] and "central square" in notes[1]
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
    monkeypatch.setattr(data, "MAX_PIXELS", 100)
    with pytest.raises(ValueError, match="more than 100"):
        explore.load_images(_png("RGB"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow's own bomb check fires first
    with pytest.raises(ValueError, match="more than 100 pixels: make it smaller"):
        explore.load_images(_png("RGB"))


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "mobilenet_v3_small"])
def test_the_series_methods_run_on_torchvision_models(name):
    """Every method that fits the architecture gives one map per image and class."""
    loaded = explore.load_model(name, size=32)
    x = torch.rand(2, 3, 32, 32)
    fits = methods.applicable(loaded.model)
    assert {"guided_backprop", "gradcam", "integrated_gradients", "occlusion"} <= set(fits)
    assert ("cam" in fits) == (name == "resnet18")  # only the ResNet ends in GAP + one Linear
    for method in fits:
        maps = methods.attribute(method, loaded.model, x, torch.tensor([1, 2]),
                                 **({"n_steps": 4} if method == "integrated_gradients" else {}))
        assert maps.shape[:2] == (2, 1) and maps.shape[-2:] == (32, 32), method
        assert torch.isfinite(maps).all(), method


def test_cam_of_a_resnet_is_its_score_split_over_the_last_feature_map():
    """CAM on torchvision's ResNet (pooling and fc inside forward): the mean of the class map
    over the 7 x 7 feature map plus the bias is the logit (Zhou et al. 2016, section 2)."""
    net = explore.load_model("resnet18", size=64).model
    assert class_maps.gap_linear(net)[0] == "1.avgpool"
    assert class_maps.default_layer(net) == "1.layer4"
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad(), cav.recording(net, ["1.avgpool"]) as calls:
        logits = net(x)
    features = calls[-1].inputs[0]  # 2 x 512 x 2 x 2
    fc = net[1].fc
    coarse = torch.einsum("kd,ndhw->nkhw", fc.weight, features)
    assert torch.allclose(coarse.mean((-2, -1)) + fc.bias, logits, atol=1e-4)
    maps = methods.attribute("cam", net, x, torch.tensor([5, 7]))
    reference = methods.attribute("cam", net, x, torch.tensor([5, 7]), reference=True)
    assert torch.allclose(maps, reference, atol=1e-5)


def test_course_models_load_with_their_classes_and_size():
    loaded = explore.load_model("vgg_cifar10")
    assert loaded.size == 32 and loaded.classes[3] == "cat" and loaded.trained
    assert "course checkpoint" in loaded.weights and "test accuracy" in loaded.weights
    assert explore.model_choices()[:3] == list(explore.COURSE_MODELS)
    layers = explore.conv_layers(loaded.model)
    assert len(layers) == 8 and explore.gradcam_layer(loaded.model, 32) in layers
    # the deepest conv of vgg_cifar10 gives 2 x 2 maps: the layer shown is the last >= 4 x 4
    assert explore.gradcam_layer(loaded.model, 32) != class_maps.default_layer(loaded.model)


def test_one_call_gives_every_applicable_map_and_its_measures_per_image():
    loaded = explore.load_model("resnet18", size=32)
    x = torch.rand(2, 3, 32, 32)
    result = explore.explain(loaded.model, x, which=["gradcam", "cwm", "occlusion"], steps=4,
                             randomisation=True, points=2)
    assert set(result.maps) == {"gradcam", "occlusion"}
    assert "GCM" in result.skipped["cwm"]  # says why CWM does not apply
    assert result.top5.shape == (2, 5) and torch.equal(result.target, result.top5[:, 0])
    assert set(result.measures) == {"gradcam", "occlusion", "random"}
    assert result.settings["occlusion"] == {"window": 4, "stride": 4}
    for name, values in result.measures.items():
        assert set(values) == ({"deletion", "insertion"} if name == "random"
                               else {"deletion", "insertion", "randomisation"})
        for v in values.values():
            assert v.shape == (2,)
        assert ((0 <= values["deletion"]) & (values["deletion"] <= 1)).all()
    only = explore.explain(loaded.model, x, which=["gradcam"], curves=False, randomisation=True,
                           points=1)
    assert set(only.measures) == {"gradcam"} and set(only.measures["gradcam"]) == {"randomisation"}
    fixed = explore.explain(loaded.model, x, target=3, which=["gradcam"], curves=False)
    assert fixed.target.tolist() == [3, 3] and fixed.measures == {}
    with pytest.raises(ValueError, match="unknown methods"):
        explore.explain(loaded.model, x, which=["gradcamm"])
    with pytest.raises(ValueError, match="target"):
        explore.explain(loaded.model, x, target=1000)


def test_the_randomisation_check_can_compare_at_fewer_points_of_the_cascade():
    net = explore.load_model("resnet18", size=32).model
    x = torch.rand(1, 3, 32, 32)
    cascade = faithfulness.cascade_layers(net, x)
    few = faithfulness.randomisation_check(net, "gradcam", x, 0, points=3)
    assert len(few.layers) == 3 and few.layers[-1] == cascade[-1]
    assert few.correlation.shape == (3, 1)
    full = faithfulness.randomisation_check(net, "gradcam", x, 0)
    at = [cascade.index(layer) for layer in few.layers]  # cumulative: same values there
    assert torch.allclose(few.correlation, full.correlation[at], equal_nan=True)
    with pytest.raises(ValueError, match="points"):
        faithfulness.randomisation_check(net, "gradcam", x, 0, points=0)


def test_the_measures_table_and_csv(tmp_path):
    loaded = explore.load_model("cnn_cifar10")
    x = torch.rand(2, 3, 32, 32)
    result = explore.explain(loaded.model, x, which=["gradcam", "cam"], steps=4)
    rows = explore.measure_rows(result, loaded.classes)
    assert len(rows) == 4 and rows[0]["method"] == "gradcam"
    assert rows[0]["random_deletion"] == round(float(result.measures["random"]["deletion"][0]), 4)
    path = explore.write_csv(result, loaded.classes, tmp_path / "m.csv")
    assert path.read_text().count("\n") == 5
    with pytest.raises(FileExistsError, match="overwrite=True"):
        explore.write_csv(result, loaded.classes, path)
