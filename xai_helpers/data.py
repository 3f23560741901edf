"""Datasets of the course: MNIST, Fashion-MNIST, CIFAR-10 and SVHN as tensors in [0, 1]
(and ``house_digits``, SVHN-like images built from MNIST by :mod:`xai_helpers.digits`).

``load(name, split)`` returns an :class:`ImageData` (images N x C x H x W float32 in [0, 1],
integer labels, class names) and prints which source it used. Sources, tried in order:

1. ``data dir``: ``{name}.npz`` in ``$XAI_DATA_DIR`` (else the repository's ``data/``), with
   uint8 arrays ``x_train, y_train, x_test, y_test`` (images HWC or HW), as in ``../shared/data``;
   CIFAR-10 may carry ``test_exact`` (True where the test image is the original pixels).
2. ``torchvision``: the official files in ``data/``, downloaded there if missing (needs the
   internet; ``XAI_DOWNLOAD=0`` forbids it).
3. ``samples``: the small real subsets committed in ``data/samples/`` (made by
   ``data/make_samples.py``), so that every notebook runs offline.

SVHN has no offline copy: only sources 1 and 2 can provide it. Use :func:`try_load` where a
notebook should say so and carry on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import config

__all__ = ["DATASETS", "DataUnavailableError", "ImageData", "load", "load_samples", "try_load",
           "find_sources",
           "jpeg_recompress", "source_name", "read_image", "MAX_PIXELS"]

MAX_PIXELS = 40_000_000  # a larger image file is refused (decompression bombs, memory)


@dataclass(frozen=True)
class DatasetInfo:
    """What the course knows about a dataset before loading it."""

    classes: tuple[str, ...]
    channels: int
    size: int
    n_train: int
    n_test: int
    torchvision: str  # class name in torchvision.datasets
    built_from: str = ""  # a dataset generated from another one (xai_helpers.digits)


_DIGITS = tuple(str(i) for i in range(10))
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(_DIGITS, 1, 28, 60_000, 10_000, "MNIST"),
    "fashion_mnist": DatasetInfo(
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        1, 28, 60_000, 10_000, "FashionMNIST"),
    "cifar10": DatasetInfo(
        ("airplane", "automobile", "bird", "cat", "deer",
         "dog", "frog", "horse", "ship", "truck"),
        3, 32, 50_000, 10_000, "CIFAR10"),
    "svhn": DatasetInfo(_DIGITS, 3, 32, 73_257, 26_032, "SVHN"),
    "house_digits": DatasetInfo(_DIGITS, 3, 32, 60_000, 10_000, "", built_from="mnist"),
}


def source_name(name: str) -> str:
    """The dataset whose files hold ``name`` (``house_digits`` is built from ``mnist``)."""
    return _info(name, "test").built_from or name


class DataUnavailableError(FileNotFoundError):
    """No source could provide the dataset; the message lists what was tried and the fix."""


@dataclass(frozen=True)
class ImageData:
    """A labelled image set as the course uses it.

    Attributes
    ----------
    images : float32 tensor N x C x H x W in [0, 1]
    labels : int64 tensor (N,)
    exact : bool tensor (N,), True where the pixels are the original ones (False only for the
        JPEG-degraded CIFAR-10 test images of ``../shared/data``)
    full : True when this is the whole official split
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: str
    exact: torch.Tensor
    full: bool

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: int | slice | torch.Tensor | np.ndarray) -> ImageData:
        """The first ``index`` images (an int), or the images at ``index`` (slice/indices)."""
        if isinstance(index, int):
            index = slice(0, index)
        return replace(self, images=self.images[index], labels=self.labels[index],
                       exact=self.exact[index], full=False)

    def per_class(self, n: int) -> ImageData:
        """The first ``n`` images of every class (fewer where a class has fewer), class by class."""
        index = torch.cat([torch.nonzero(self.labels == c).flatten()[:n]
                           for c in range(len(self.classes))])
        return self.subset(index)

    def describe(self) -> str:
        whole = "full split" if self.full else "subset"
        n_exact = int(self.exact.sum())
        jpeg = "" if n_exact == len(self) else f", {len(self) - n_exact:,} JPEG-degraded"
        return (f"{self.name}/{self.split}: {len(self):,} images ({whole}{jpeg}) "
                f"from {self.source}")


def _info(name: str, split: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; the course knows {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    return DATASETS[name]


def _to_tensors(x: np.ndarray, y: np.ndarray, where: str = "") -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
    """uint8 HW / HWC / CHW arrays -> float N x C x H x W in [0, 1], int64 labels (N,).
    Labels must be integers, one per image ((N, 1) is flattened); one-hot or float labels are
    refused (they would make every accuracy wrong without a word)."""
    where = f"{where}: " if where else ""
    if x.dtype != np.uint8:
        raise ValueError(f"{where}images must be uint8 in [0, 255], got {x.dtype}")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{where}labels must be one class index per image, shape (N,), got "
                         f"{y.shape}" + (" (one-hot? use labels.argmax(1))" if y.ndim == 2
                                         else ""))
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ValueError(f"{where}labels must be integers (class indices), got {y.dtype}")
    images = torch.from_numpy(np.ascontiguousarray(x))
    if images.ndim == 3:  # N, H, W
        images = images.unsqueeze(1)
    elif images.ndim == 4 and images.shape[-1] in (1, 3):  # N, H, W, C
        images = images.permute(0, 3, 1, 2)
    return images.float().div_(255), torch.from_numpy(y.astype(np.int64))


def _check(name: str, split: str, images: torch.Tensor, labels: torch.Tensor, where: str) -> None:
    info = DATASETS[name]
    expected = (info.channels, info.size, info.size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected or len(images) != len(labels):
        raise ValueError(f"{where}: {split} images have shape {tuple(images.shape)} with "
                         f"{len(labels)} labels; expected N x {expected} and N labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(info.classes)):
        raise ValueError(f"{where}: labels outside 0..{len(info.classes) - 1}")


def _from_npz(path: Path, name: str, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    where = config.show_path(path)
    fix = ("replace the file with a complete copy (e.g. from ../shared/data), or move it away "
           "to fall back to the next source")
    try:
        with np.load(path, allow_pickle=False) as d:
            arrays = {k: np.asarray(d[k]) for k in d.files if k.endswith(f"_{split}") or
                      k == f"{split}_exact"}
            files = list(d.files)
    except Exception as err:  # not a zip, truncated, empty, pickled objects, unreadable
        detail = " ".join(str(err).split())[:160]
        raise ValueError(f"{where} is not a readable .npz ({type(err).__name__}: {detail}); "
                         f"{fix}") from None
    keys = (f"x_{split}", f"y_{split}")
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(f"{where} has no array(s) {', '.join(missing)} (it has "
                         f"{', '.join(files) or 'none'}); expected x_train, y_train, x_test, "
                         f"y_test (uint8, HWC) as in ../shared/data")
    images, labels = _to_tensors(arrays[keys[0]], arrays[keys[1]], where)
    exact_key = f"{split}_exact"
    exact = (torch.from_numpy(arrays[exact_key].astype(bool)) if exact_key in arrays
             else torch.ones(len(labels), dtype=torch.bool))
    if exact.shape != labels.shape:
        raise ValueError(f"{where}: {split}_exact has shape {tuple(exact.shape)}, but there are "
                         f"{len(labels)} labels; it must hold one flag per image")
    _check(name, split, images, labels, where)
    return images, labels, exact


def _from_torchvision(name: str, split: str, download: bool):
    import torchvision

    info = DATASETS[name]
    cls = getattr(torchvision.datasets, info.torchvision)
    if name == "svhn":
        ds = cls(str(config.DATA_ROOT / "svhn"), split=split, download=download)
        x, y = ds.data, ds.labels  # N, 3, 32, 32
    else:
        ds = cls(str(config.DATA_ROOT), train=(split == "train"), download=download)
        x, y = np.asarray(ds.data), np.asarray(ds.targets)
    images, labels = _to_tensors(np.asarray(x), y)
    _check(name, split, images, labels, f"torchvision {info.torchvision}")
    return images, labels, torch.ones(len(labels), dtype=torch.bool)


def _try_torchvision(name: str, split: str, tried: list[str]):
    """Files already in data/ first; then, if allowed, the official download."""
    where = f"torchvision {DATASETS[name].torchvision} in {config.show_path(config.DATA_ROOT)}"
    try:
        return _from_torchvision(name, split, download=False)
    except (RuntimeError, FileNotFoundError):  # not there (torchvision's own messages)
        pass
    except Exception as err:  # partial or damaged files: say so, and go on to the next source
        reason = " ".join(str(err).split())[:160]
        tried.append(f"{where}: files there but unreadable ({type(err).__name__}: {reason}); "
                     f"delete them to download again")
        return None
    if not config.download_allowed():
        tried.append(f"{where}: not downloaded, and downloads are off (XAI_DOWNLOAD=0)")
        return None
    try:
        return _from_torchvision(name, split, download=True)
    except Exception as err:  # no network, server down, bad file: all mean "not this source"
        reason = " ".join(str(err).split())[:200]
        tried.append(f"{where}: download failed ({type(err).__name__}: {reason})")
        return None


def find_sources(name: str) -> list[str]:
    """Which sources hold ``name`` right now (without loading or downloading anything)."""
    if _info(name, "test").built_from:
        return [f"built from {src}" for src in find_sources(source_name(name))]
    found = []
    if (config.data_dir() / f"{name}.npz").exists():
        found.append(f"data dir ({config.show_path(config.data_dir() / f'{name}.npz')})")
    tv = {"mnist": "MNIST/raw/t10k-images-idx3-ubyte",
          "fashion_mnist": "FashionMNIST/raw/t10k-images-idx3-ubyte",
          "cifar10": "cifar-10-batches-py/test_batch", "svhn": "svhn/test_32x32.mat"}[name]
    if (config.DATA_ROOT / tv).exists():
        found.append(f"torchvision files ({config.show_path((config.DATA_ROOT / tv).parent)})")
    if (config.SAMPLES_DIR / f"{name}.npz").exists():
        found.append(f"samples ({config.show_path(config.SAMPLES_DIR / f'{name}.npz')})")
    return found


def load(name: str, split: str = "test", *, n: int | None = None,
         verbose: bool = True) -> ImageData:
    """Load a dataset split from the first source that has it (see the module docstring).

    Parameters
    ----------
    name : ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"`` or ``"svhn"``
    split : ``"train"`` or ``"test"``
    n : keep only the first ``n`` images (``None``: all the source has)
    verbose : print which source was used

    Raises
    ------
    DataUnavailableError
        When no source has the dataset; the message lists every place tried and the fix.
    """
    info = _info(name, split)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive integer (the first n images) or None (all), "
                         f"got {n!r}")
    if info.built_from:  # house_digits: generated from the whole MNIST split
        from .digits import house_digits

        base = load(info.built_from, split, verbose=False)
        data = house_digits(base)[0]
        data = data.subset(n) if n is not None and n < len(data) else data
        if verbose:
            print(data.describe())
        return data
    n_full = info.n_train if split == "train" else info.n_test
    tried: list[str] = []
    result = None

    path = config.data_dir() / f"{name}.npz"
    if path.exists():
        result = (*_from_npz(path, name, split), f"data dir {config.show_path(path)}")
    else:
        tried.append(f"data dir: {config.show_path(path)} does not exist")

    if result is None:
        loaded = _try_torchvision(name, split, tried)
        if loaded is not None:
            result = (*loaded, f"torchvision files in {config.show_path(config.DATA_ROOT)}")

    if result is None:
        sample = config.SAMPLES_DIR / f"{name}.npz"
        if sample.exists():
            result = (*_from_npz(sample, name, split),
                      f"committed samples {config.show_path(sample)}")
        else:
            tried.append(f"samples: {config.show_path(sample)} does not exist (no offline "
                         f"sample of {name})")

    if result is None:
        raise DataUnavailableError(_unavailable_message(name, split, tried))

    images, labels, exact, source = result
    unreadable = [t for t in tried if "unreadable" in t]
    if unreadable and verbose:
        print(f"note: {'; '.join(unreadable)}; using {source} instead")
    data = ImageData(name, split, images, labels, info.classes, source, exact,
                     full=len(labels) == n_full)
    if n is not None and n < len(data):
        data = data.subset(n)
    if verbose:
        print(data.describe())
    return data


def load_samples(name: str, split: str = "test") -> ImageData:
    """The committed sample of ``name`` only (``data/samples/``), whatever else is installed:
    what every checkpoint's JSON records an accuracy on (``test_accuracy_samples``), so that
    ``make test`` can re-measure it anywhere. ``house_digits`` is built from the MNIST sample."""
    info = _info(name, split)
    if info.built_from:
        from .digits import house_digits

        return house_digits(load_samples(info.built_from, split))[0]
    path = config.SAMPLES_DIR / f"{name}.npz"
    if not path.exists():
        raise DataUnavailableError(f"{config.show_path(path)} does not exist (no offline sample "
                                   f"of {name}); restore it with `git checkout -- data/samples`")
    images, labels, exact = _from_npz(path, name, split)
    n_full = info.n_train if split == "train" else info.n_test
    return ImageData(name, split, images, labels, info.classes,
                     f"committed samples {config.show_path(path)}", exact,
                     full=len(labels) == n_full)


def _unavailable_message(name: str, split: str, tried: list[str]) -> str:
    lines = [f"no source has the {name} {split} set. Looked for:"]
    lines += [f"  {i}. {t}" for i, t in enumerate(tried, 1)]
    lines += [
        "How to fix it (any one):",
        f"  - put {name}.npz (uint8 arrays x_train, y_train, x_test, y_test) in a folder and "
        f"set XAI_DATA_DIR to it, e.g. export XAI_DATA_DIR=../shared/data",
        f"  - with internet access (and XAI_DOWNLOAD unset), run again: torchvision "
        f"downloads {name} into {config.show_path(config.DATA_ROOT)}",
    ]
    if name != "svhn":
        lines.append("  - restore the committed samples: git checkout -- data/samples")
    return "\n".join(lines)


def try_load(name: str, split: str = "test", **kwargs) -> ImageData | None:
    """Like :func:`load`, but print why the dataset is unavailable and return ``None``."""
    try:
        return load(name, split, **kwargs)
    except DataUnavailableError as err:
        print(f"{name} is unavailable here, carrying on without it.\n{err}")
        return None


def jpeg_recompress(images: torch.Tensor, quality: int = 75) -> torch.Tensor:
    """Each image encoded as baseline JPEG (Pillow, ``quality``, 4:2:0 chroma) and decoded.

    With quality 75 this is how ``../shared/data``'s CIFAR-10 test images 1000-9999 were
    degraded: on the 1000 exact test images it gives a mean absolute error of 5.82 grey levels
    (PSNR 29.90 dB, worst pixel 113) against the data README's 5.80 (29.97 dB, 113).
    """
    import io

    from PIL import Image

    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    grey = pixels.shape[1] == 1
    pixels = pixels.permute(0, 2, 3, 1).numpy()
    out = np.empty_like(pixels)
    for i, img in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(img[..., 0] if grey else img).save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer))
        out[i] = decoded[..., None] if grey else decoded
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)


def environment_sources() -> dict[str, list[str]]:
    """``{dataset: sources found}`` for every dataset (for the environment check)."""
    return {name: find_sources(name) for name in DATASETS}


def read_image(source, size: int, what: str = "the image",
               notes: list[str] | None = None) -> torch.Tensor:
    """An image file (path, bytes or open file) as a 3 x size x size tensor in [0, 1]: its
    central square, resized with Pillow (bicubic); grey, palette and RGBA images made RGB (a
    grey image's one channel repeated). Not an image, or more than :data:`MAX_PIXELS` pixels:
    a ``ValueError`` naming ``what`` and the fix. ``notes`` (a list) gets a line for each
    conversion that changed what the file holds (grey or transparent to RGB, cropping)."""
    import io

    from PIL import Image, UnidentifiedImageError

    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    try:
        with Image.open(source) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"{what} has {img.width} x {img.height} pixels, more than "
                                 f"{MAX_PIXELS:,}: make it smaller first")
            if notes is not None and img.mode != "RGB":
                grey = img.mode in ("1", "L", "LA", "I", "I;16", "F")
                notes.append(f"{what}: a {'grey' if grey else img.mode} image, made RGB"
                             + (" (its one channel copied into R, G and B)" if grey else ""))
            if notes is not None and img.width != img.height:
                notes.append(f"{what}: {img.width} x {img.height}, its central square kept")
            img = img.convert("RGB")
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize(
                (size, size), Image.Resampling.BICUBIC)
    except Image.DecompressionBombError:
        raise ValueError(f"{what} has more than {MAX_PIXELS:,} pixels: make it smaller "
                         f"first") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{what} is not an image Pillow can read ({type(err).__name__}); "
                         f"give a PNG or JPEG file") from None
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float() / 255
