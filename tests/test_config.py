"""Settings read from the environment."""

from __future__ import annotations

import importlib

import pytest

from xai_helpers import config


@pytest.mark.parametrize("value, quick", [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_flag(monkeypatch, value, quick):
    monkeypatch.setenv("XAI_QUICK", value)
    try:
        assert importlib.reload(config).QUICK is quick
        assert config.pick("q", "f") == ("q" if quick else "f")
        assert ("QUICK mode" in config.mode_banner()) is quick
    finally:
        monkeypatch.setenv("XAI_QUICK", "1")
        importlib.reload(config)


def test_data_dir_and_downloads_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path
    monkeypatch.delenv("XAI_DATA_DIR")
    assert config.data_dir() == config.ROOT / "data"
    monkeypatch.setenv("XAI_DOWNLOAD", "0")
    assert not config.download_allowed()
    monkeypatch.setenv("XAI_DOWNLOAD", "1")
    assert config.download_allowed()


def test_device_override(monkeypatch):
    monkeypatch.setenv("XAI_DEVICE", "cpu")
    assert config.device().type == "cpu"


def test_show_path_prints_paths_that_are_true_on_any_machine(tmp_path):
    assert config.show_path(config.SAMPLES_DIR / "mnist.npz") == "data/samples/mnist.npz"
    assert config.show_path(config.ROOT.parent / "shared" / "data") == "../shared/data"
    link = tmp_path / "data_link"  # a link to a folder beside the repository: shown as given
    link.symlink_to(config.ROOT / "data")
    assert config.show_path(link) == "data"
    assert config.show_path(config.ROOT) == "."
    elsewhere = "/elsewhere/on/disk/cifar10.npz"
    if config.ROOT.parent.parent != config.ROOT.parent:  # the repository is not at /x
        assert config.show_path(elsewhere) == elsewhere  # the user's own path, as it is
    assert str(config.ROOT) not in config.mode_banner()
