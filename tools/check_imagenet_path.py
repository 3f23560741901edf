"""Run notebook 04 through its ImageNet path with a random-weights VGG-16 file (no download).

    python tools/check_imagenet_path.py

Notebook 04 explains VGG-16 with its ImageNet weights when they can be had and the stand-in
``vgg_cifar10`` otherwise; the committed run and ``make test`` take the offline path. This
script writes a randomly initialised VGG-16 ``state_dict`` (553 MB) under a temporary
``TORCH_HOME``, where ``cav_analysis.load_vgg16_imagenet`` looks for torchvision's file,
executes the notebook into ``build/nbtest/``, and fails if any cell raises. Random weights
make the maps meaningless; what it checks is that every cell of that path runs (about 30 s on
2 CPU cores, plus writing the file).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    import nbformat
    import torch
    import torchvision
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as home:
        checkpoints = Path(home) / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True)
        torch.manual_seed(0)
        torch.save(torchvision.models.vgg16(weights=None).state_dict(),
                   checkpoints / "vgg16-397923af.pth")
        os.environ.update(TORCH_HOME=home, XAI_DOWNLOAD="0", XAI_QUIET="1")
        notebook = ROOT / "notebooks" / "04_cav_contribution_ratios.ipynb"
        nb = nbformat.read(notebook, as_version=4)
        NotebookClient(nb, timeout=1200, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
        out = ROOT / "build" / "nbtest" / "04_imagenet_random_weights.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
    said = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    if "VGG-16 with ImageNet weights" not in said:
        print("the notebook did not take the ImageNet path")
        return 1
    print(f"notebook 04 ran through its ImageNet path (random weights) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
