"""Loaders: each source in order, the error when none has the data, shapes/dtypes/ranges."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from conftest import write_npz

from xai_helpers import config, data


def _write_idx(raw, prefix, n):
    raw.mkdir(parents=True, exist_ok=True)
    images = np.full((n, 28, 28), 255, np.uint8)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 0x801, n) + (np.arange(n) % 10).astype(np.uint8).tobytes())


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_committed_samples_load_offline_with_right_types(name, monkeypatch, tmp_path, capsys):
    """With no data dir and no downloads, every notebook dataset comes from data/samples."""
    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(config, "DATA_ROOT", tmp_path)
    d = data.load(name, "test")
    info = data.DATASETS[name]
    assert d.images.dtype == torch.float32 and d.labels.dtype == torch.int64
    assert d.images.shape[1:] == (info.channels, info.size, info.size)
    assert 0.0 <= d.images.min() and d.images.max() <= 1.0 and d.images.max() > 0.9
    assert set(d.labels.tolist()) == set(range(10))
    assert d.exact.all() and "samples" in d.source
    assert "committed samples" in capsys.readouterr().out


def test_mnist_sample_is_the_full_test_set(monkeypatch, tmp_path):
    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(config, "DATA_ROOT", tmp_path)
    d = data.load("mnist", "test", verbose=False)
    assert len(d) == 10_000 and d.full
    assert d.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # known first labels
    assert torch.bincount(d.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                                 974, 1009]


def test_data_dir_comes_first_and_reads_hw_and_hwc(no_sources, monkeypatch, capsys):
    folder = no_sources / "mydata"
    write_npz(folder / "mnist.npz")
    write_npz(folder / "cifar10.npz", shape=(32, 32, 3),
              test_exact=np.array([True, False, True, True]))
    monkeypatch.setenv("XAI_DATA_DIR", str(folder))
    m = data.load("mnist", "train")
    assert m.images.shape == (6, 1, 28, 28) and "data dir" in m.source and not m.full
    c = data.load("cifar10", "test")
    assert c.images.shape == (4, 3, 32, 32)
    assert c.exact.tolist() == [True, False, True, True]
    raw = np.load(folder / "cifar10.npz")["x_test"]
    assert torch.allclose(c.images[1, :, 2, 3] * 255, torch.tensor(raw[1, 2, 3], dtype=torch.float))
    assert "1 JPEG-degraded" in capsys.readouterr().out


def test_torchvision_files_are_second(no_sources):
    _write_idx(config.DATA_ROOT / "MNIST" / "raw", "t10k", 5)
    _write_idx(config.DATA_ROOT / "MNIST" / "raw", "train", 3)
    d = data.load("mnist", "test", verbose=False)
    assert len(d) == 5 and "torchvision" in d.source
    assert d.images.shape == (5, 1, 28, 28) and float(d.images.max()) == 1.0
    assert d.labels.tolist() == [0, 1, 2, 3, 4]


def test_samples_are_third(no_sources):
    write_npz(config.SAMPLES_DIR / "mnist.npz")
    d = data.load("mnist", "test", verbose=False)
    assert "samples" in d.source and len(d) == 4


def test_error_lists_every_place_and_the_fix(no_sources):
    with pytest.raises(data.DataUnavailableError) as err:
        data.load("mnist", "test")
    message = str(err.value)
    assert "nothing/mnist.npz does not exist" in message
    assert "XAI_DOWNLOAD=0" in message
    assert "samples/mnist.npz does not exist" in message
    assert "XAI_DATA_DIR" in message and "How to fix" in message


def test_failed_download_is_reported(no_sources, monkeypatch):
    monkeypatch.setenv("XAI_DOWNLOAD", "1")
    calls = []

    def offline(name, split, download):
        calls.append(download)
        raise RuntimeError("Dataset not found") if not download else OSError("no network")

    monkeypatch.setattr(data, "_from_torchvision", offline)
    with pytest.raises(data.DataUnavailableError, match="download failed .*no network"):
        data.load("svhn", "test")
    assert calls == [False, True]


def test_try_load_says_unavailable_and_returns_none(no_sources, capsys):
    assert data.try_load("svhn") is None
    assert "svhn is unavailable here, carrying on without it" in capsys.readouterr().out


def test_bad_arguments_and_bad_files_give_clear_errors(no_sources, monkeypatch):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="split must be"):
        data.load("mnist", "validation")
    folder = no_sources / "bad"
    write_npz(folder / "mnist.npz", shape=(32, 32))
    monkeypatch.setenv("XAI_DATA_DIR", str(folder))
    with pytest.raises(ValueError, match=r"expected N x \(1, 28, 28\)"):
        data.load("mnist")
    np.savez(folder / "mnist.npz", images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="has no array"):
        data.load("mnist")


def test_subset_and_per_class(monkeypatch, tmp_path):
    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path))
    d = data.load("mnist", "test", n=500, verbose=False)
    assert len(d) == 500 and not d.full
    per = d.per_class(3)
    assert len(per) == 30
    assert torch.equal(per.labels, torch.arange(10).repeat_interleave(3))


def test_find_sources_lists_samples(monkeypatch, tmp_path):
    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path))
    assert any("samples" in s for s in data.find_sources("cifar10"))
    assert not any("samples" in s for s in data.find_sources("svhn"))


def test_jpeg_recompress_degrades_like_the_offline_cifar10_test_set(monkeypatch, tmp_path):
    # the data README: JPEG vs original on the 1000 exact test images, MAE 5.80 grey levels
    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path))
    exact = data.load("cifar10", "test", n=300, verbose=False)  # committed exact test images
    assert bool(exact.exact.all())
    jpeg = data.jpeg_recompress(exact.images)
    assert jpeg.shape == exact.images.shape and jpeg.dtype == torch.float32
    mae = (jpeg - exact.images).abs().mean().item() * 255
    assert 5.0 < mae < 6.7
    assert torch.equal(data.jpeg_recompress(exact.images), jpeg)  # deterministic
    grey = data.load("mnist", "test", n=5, verbose=False).images
    assert data.jpeg_recompress(grey).shape == grey.shape
