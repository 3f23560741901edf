"""Notebook 08's figure, export and widgets: what a redraw computes, what it shows, and that the
controls follow the model (layers, top-5, methods)."""

from __future__ import annotations

import datetime
import io

import matplotlib.pyplot as plt
import pytest
import torch
from PIL import Image

from xai_helpers import data, explore, explore_view, methods


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("XAI_DOWNLOAD", "0")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


@pytest.fixture
def explorer():
    samples = data.load_samples("cifar10")
    images = {f"test {i}": samples.images[i] for i in range(2)}
    return explore_view.Explorer(images, models=["cnn_cifar10", "gcm_cifar10"], steps=4)


def test_a_render_shows_every_applicable_method_and_keeps_what_it_computed(explorer):
    fig = explorer.render("gcm_cifar10", "test 0")
    result = explorer.last
    fits = methods.applicable(explorer.model("gcm_cifar10").model)
    assert list(result.maps) == fits and "cwm" in fits and "ccm" in fits
    assert set(result.skipped) == set(methods.METHODS) - set(fits)  # e.g. CAM, with why
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("GCM CWM\ndel ") for t in titles)
    assert "top-5 (red: explained)" in titles
    plt.close(fig)
    cached = len(explorer._cache)
    plt.close(explorer.render("gcm_cifar10", "test 0", which=["gradcam", "cwm"]))
    assert len(explorer._cache) == cached  # a smaller method set computes nothing new
    assert torch.equal(explorer.last.maps["cwm"], result.maps["cwm"])
    plt.close(explorer.render("gcm_cifar10", "test 0", rank=1, which=["cwm"]))
    assert len(explorer._cache) == cached + 2  # the second class: its floor and its map
    assert int(explorer.last.target) == int(result.top5[0, 1])


def test_export_writes_png_and_csv_and_keeps_existing_files(explorer, tmp_path):
    fig = explorer.render("cnn_cifar10", "test 1", which=["gradcam", "cam"])
    paths = explore_view.export(fig, explorer.last, explorer.model("cnn_cifar10").classes,
                                tmp_path / "out", "mine")
    assert [p.name for p in paths] == ["mine.png", "mine.csv"]
    assert Image.open(paths[0]).size[0] > 400
    lines = paths[1].read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("image,class,class_name,method")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        explore_view.export(fig, explorer.last, explorer.model("cnn_cifar10").classes,
                            tmp_path / "out", "mine")
    plt.close(fig)


def _file(name: str, content: bytes) -> dict:
    """One uploaded file as ipywidgets 8's FileUpload holds it."""
    return {"name": name, "type": "", "size": len(content), "content": memoryview(content),
            "last_modified": datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)}


def test_the_widgets_follow_the_model_and_report_the_redraw_time(explorer, tmp_path):
    view = explorer.view()
    (model, image, upload), (layer, cav_layer, rank), (which, side) = (
        [c for c in row.children] for row in view.children[:3])
    status = view.children[3]
    assert model.value == "cnn_cifar10" and "drawn in" in status.value
    assert layer.value == explore.gradcam_layer(explorer.model("cnn_cifar10").model, 32)
    assert cav_layer.options[0] == "input" and len(rank.options) == 5
    model.value = "gcm_cifar10"  # the layers and methods follow the model
    assert "cwm" in which.value and layer.options != ("-",)
    which.value = ("cwm",)
    assert list(explorer.last.maps) == ["cwm"]
    upload.value = (_file("notes.txt", b"not an image"),)
    assert "not an image Pillow can read" in status.value and len(image.options) == 2
    buffer = io.BytesIO()
    Image.new("L", (50, 40), 90).save(buffer, format="PNG")
    upload.value = (_file("grey.png", buffer.getvalue()),)
    assert image.value == "upload 2" and "grey image, made RGB" in status.value
    side.children[1].value = str(tmp_path / "export")
    side.children[2].click()
    assert "wrote" in status.value and len(list((tmp_path / "export").iterdir())) == 2
    side.children[2].click()  # a second export does not overwrite the first
    assert "exists" in status.value
