"""Write the small real samples committed in data/samples/ from full .npz datasets.

    python data/make_samples.py ../shared/data

Each sample keeps the *first* images of each split of the original order, in the same format as
the full files (uint8 ``x_train, y_train, x_test, y_test``). CIFAR-10's sample test set is its
1,000 exact test images (``test_exact`` is True for all of them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

# dataset -> (training images kept, test images kept)
SIZES = {"mnist": (2_000, 10_000), "fashion_mnist": (1_000, 2_000), "cifar10": (1_000, 1_000)}


def make_samples(source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (n_train, n_test) in SIZES.items():
        with np.load(source / f"{name}.npz") as d:
            arrays = {"x_train": d["x_train"][:n_train], "y_train": d["y_train"][:n_train],
                      "x_test": d["x_test"][:n_test], "y_test": d["y_test"][:n_test]}
            if "test_exact" in d.files:
                exact = d["test_exact"][:n_test]
                if not exact.all():
                    raise SystemExit(f"{name}: the first {n_test} test images are not all exact")
                arrays["test_exact"] = exact
        np.savez_compressed(out / f"{name}.npz", **arrays)
        size = (out / f"{name}.npz").stat().st_size / 1e6
        print(f"{name}: {n_train} train + {n_test} test images -> {out / name}.npz ({size:.1f} MB)")


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    make_samples(src, Path(__file__).resolve().parent / "samples")
