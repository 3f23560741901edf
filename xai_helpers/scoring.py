"""Measuring a trained model: predictions, accuracy, the test-set figures a checkpoint's JSON
records (with the 95% Wilson interval and what JPEG costs on the offline CIFAR-10).

Used by :mod:`xai_helpers.train` (which re-exports these names), :mod:`xai_helpers.verify`
and the notebooks (``train.evaluate``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn

from . import config, data

__all__ = ["predict", "evaluate", "measure_test", "wilson_interval", "jpeg_report"]


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, *, batch_size: int = 500,
            device: str | torch.device | None = None) -> torch.Tensor:
    """Class scores (N x K, on the CPU) of ``model`` for ``images``, in eval mode, batched."""
    device = torch.device(device) if device is not None else config.device()
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(images[i:i + batch_size].to(device)).float().cpu()
                          for i in range(0, len(images), batch_size)])
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, dataset: data.ImageData, *, batch_size: int = 500,
             device: str | torch.device | None = None) -> float:
    """Accuracy (fraction) of ``model`` on ``dataset``."""
    scores = predict(model, dataset.images, batch_size=batch_size, device=device)
    return (scores.argmax(1) == dataset.labels).float().mean().item()


def wilson_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy measured on ``n`` images."""
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def jpeg_report(model: nn.Module, test: data.ImageData, *,
                device: str | torch.device | None = None) -> dict:
    """For a test set that is partly JPEG-degraded (the offline CIFAR-10): the accuracy on the
    exact images with its 95% interval, and on the same images recompressed as the others
    were (JPEG quality 75), whose difference is the accuracy that JPEG costs."""
    exact = test.subset(torch.nonzero(test.exact).flatten())
    acc = evaluate(model, exact, device=device)
    jpeg = replace(exact, images=data.jpeg_recompress(exact.images))
    acc_jpeg = evaluate(model, jpeg, device=device)
    low, high = wilson_interval(acc, len(exact))
    return {"test_size_exact": len(exact), "test_accuracy_exact": round(acc, 6),
            "test_accuracy_exact_ci95": [round(low, 6), round(high, 6)],
            "test_accuracy_exact_recompressed": round(acc_jpeg, 6),
            "jpeg_drop": round(acc - acc_jpeg, 6)}


def measure_test(model: nn.Module, dataset: str, *, quick: bool = False,
                 device: str | torch.device | None = None) -> dict:
    """The test-set figures of a finished model for its JSON: accuracy on the whole test split
    (the samples' first 1,000 images in quick mode), and for a partly JPEG-degraded test set
    the exact images' accuracy with its interval (:func:`jpeg_report`)."""
    test = data.load(dataset, "test", n=1_000 if quick else None)
    if not quick and not test.full:
        raise data.DataUnavailableError(
            f"measuring a full-mode model needs the whole {dataset} test split, but got "
            f"{len(test):,} images (from {test.source}); set XAI_DATA_DIR")
    meta = {"test_size": len(test), "test_accuracy": round(evaluate(model, test, device=device), 6)}
    if not bool(test.exact.all()):
        meta.update(jpeg_report(model, test, device=device))
    return meta
