"""Shared fixtures. The suite runs offline, in quick mode, without progress bars."""

from __future__ import annotations

import os
import shutil

for _key, _value in {"XAI_QUICK": "1", "XAI_DOWNLOAD": "0", "XAI_QUIET": "1",
                     "MPLBACKEND": "Agg"}.items():
    os.environ.setdefault(_key, _value)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from xai_helpers import config  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: one thread is faster, and a busy 2-core machine is not oversubscribed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seeded():
    config.set_seed(0)


@pytest.fixture
def no_sources(tmp_path, monkeypatch):
    """A world with no data dir, no torchvision files, no samples and no downloads."""
    (tmp_path / "nothing").mkdir()  # an empty data dir (a missing one is an error of its own)
    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("XAI_DOWNLOAD", "0")
    monkeypatch.setattr(config, "DATA_ROOT", tmp_path / "data")
    monkeypatch.setattr(config, "SAMPLES_DIR", tmp_path / "data" / "samples")
    return tmp_path


def write_npz(path, n_train=6, n_test=4, shape=(28, 28), classes=10, **extra):
    """A tiny dataset file in the format of ../shared/data (uint8, HW or HWC)."""
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path,
             x_train=rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
             y_train=(np.arange(n_train) % classes).astype(np.uint8),
             x_test=rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
             y_test=(np.arange(n_test) % classes).astype(np.uint8), **extra)
    return path


@pytest.fixture
def tiny_cnn() -> nn.Sequential:
    """A 2-layer CNN on 1 x 8 x 8 inputs, every layer its own module."""
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(2 * 4 * 4, 3))


@pytest.fixture
def blobs():
    """A separable 3-class problem on 1 x 8 x 8 images: a bright square in one of 3 places."""
    from xai_helpers.data import ImageData

    n = 300
    labels = torch.arange(n) % 3
    images = 0.1 * torch.rand(n, 1, 8, 8)
    for c, (r, col) in enumerate([(0, 0), (0, 5), (5, 2)]):
        images[labels == c, :, r:r + 3, col:col + 3] += 0.8
    return ImageData("blobs", "train", images, labels, ("a", "b", "c"), "synthetic",
                     torch.ones(n, dtype=torch.bool), full=True)


@pytest.fixture(scope="module")
def chromium():
    """Playwright's Chromium driver on the system's chromium; skips where there is none."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (make install)")
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path or not os.access(path, os.X_OK):
        where = f"CHROMIUM={path} is no executable" if path else "chromium is not on PATH"
        pytest.skip(f"no browser: {where} (`make browser` installs Debian's chromium; "
                    "or set CHROMIUM=/path/to/chrome)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()
