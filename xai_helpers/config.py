"""Run-time settings of the course: quick/full mode, device, seeds and paths.

Environment variables (all optional):

``XAI_QUICK``     ``1`` = quick mode (small data, few steps; what the tests use).
``XAI_DATA_DIR``  folder with ``{name}.npz`` datasets (default: the repository's ``data/``).
``XAI_DOWNLOAD``  ``0`` = never try the torchvision download (the tests set it).
``XAI_DEVICE``    ``cpu`` or ``cuda`` (default: ``cuda`` when available).
``XAI_QUIET``     ``1`` = no progress bars (the tests set it).
``XAI_ROOT``      the repository root, when the package is installed elsewhere (Colab).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in _TRUE


def _find_root() -> Path:
    """The repository root: ``$XAI_ROOT``, else the folder above this package."""
    if os.environ.get("XAI_ROOT"):
        return Path(os.environ["XAI_ROOT"]).expanduser().resolve()
    return Path(__file__).resolve().parent.parent


QUICK: bool = _flag("XAI_QUICK")
QUIET: bool = _flag("XAI_QUIET")
SEED: int = 0

ROOT: Path = _find_root()
DATA_ROOT: Path = ROOT / "data"  # downloads, samples/, checkpoints/, results/
SAMPLES_DIR: Path = DATA_ROOT / "samples"
CHECKPOINT_DIR: Path = DATA_ROOT / "checkpoints"
RESULTS_DIR: Path = DATA_ROOT / "results"
BUILD_DIR: Path = ROOT / "build"


def data_dir() -> Path:
    """The local data directory: ``$XAI_DATA_DIR`` if set, else the repository's ``data/``.

    A relative ``XAI_DATA_DIR`` is read from the repository root, wherever the code runs
    (``XAI_DATA_DIR=../shared/data`` means the same folder in a notebook, whose working folder
    is ``notebooks/``, as in ``make``). A folder that does not exist is an error, not a silent
    fall-back to the samples."""
    value = os.environ.get("XAI_DATA_DIR")
    if not value:
        return DATA_ROOT
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else ROOT / path).resolve()
    if not path.is_dir():
        relative = ("" if Path(value).expanduser().is_absolute()
                    else ", read from the repository root")
        raise FileNotFoundError(
            f"XAI_DATA_DIR={value} names no folder ({path}{relative}); set it to the folder "
            f"holding {{name}}.npz (e.g. ../shared/data), or unset it to use the samples")
    return path


def show_path(path: str | Path) -> str:
    """``path`` as printed in outputs that are committed: relative to the repository when it is
    inside it or beside it (``data/samples/mnist.npz``, ``../shared/data``), so that what a
    student reads is true on their machine too; any other path as it is (the user's own)."""
    path = Path(path).expanduser()
    for candidate in (Path(os.path.abspath(path)), path.resolve()):  # as given, links followed
        for base, prefix in ((ROOT, ""), (ROOT.parent, "../")):
            if candidate.is_relative_to(base) and base != base.parent:
                return prefix + (candidate.relative_to(base).as_posix() if candidate != base
                                 else ".")
    return str(path.resolve())


def download_allowed() -> bool:
    """Whether loaders may try the torchvision download (``XAI_DOWNLOAD=0`` forbids it)."""
    return _flag("XAI_DOWNLOAD", default=True)


def device() -> torch.device:
    """``$XAI_DEVICE`` if set, else CUDA when available, else the CPU."""
    name = os.environ.get("XAI_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def pick(quick: T, full: T) -> T:
    """``quick`` in quick mode, ``full`` otherwise (e.g. ``n = pick(500, 10_000)``)."""
    return quick if QUICK else full


def set_seed(seed: int = SEED) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def mode_banner() -> str:
    """One line for the top of every notebook: which mode, which device."""
    if QUICK:
        mode = "QUICK mode (XAI_QUICK=1): small data and few steps; numbers are NOT the papers'"
    else:
        mode = "FULL mode: full test sets and the committed full-training checkpoints"
    return f"{mode} | device: {device()} | data dir: {show_path(data_dir())}"
