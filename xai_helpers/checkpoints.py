"""The store of trained checkpoints: ``data/checkpoints/NAME.pt`` + ``NAME.json``.

``NAME.pt`` is the ``state_dict`` (loaded with ``weights_only=True``); ``NAME.json`` says how
it was trained and the test accuracy measured on the full test set, plus the file's SHA-256 so
a corrupt or replaced file is caught. ``python -m xai_helpers.train NAME`` writes both;
``python -m xai_helpers.verify`` re-measures them. Re-exported by :mod:`xai_helpers.models`.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from . import (
    architectures,  # noqa: F401  (registers every model)
    config,
    registry,
)

__all__ = ["CheckpointError", "checkpoint_paths", "save_checkpoint", "read_meta",
           "load_pretrained", "pretrained_table", "model_versions"]

VERSIONS_CSV = "model_versions.csv"  # in data/results: every version ever trained, measured


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or does not fit its architecture."""


def checkpoint_paths(name: str, directory: Path | None = None) -> tuple[Path, Path]:
    """``(NAME.pt, NAME.json)`` in ``directory`` (default ``data/checkpoints``)."""
    directory = Path(directory) if directory is not None else config.CHECKPOINT_DIR
    return directory / f"{name}.pt", directory / f"{name}.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(model: nn.Module, name: str, meta: dict,
                    directory: Path | None = None) -> tuple[Path, Path]:
    """Write ``NAME.pt`` (state_dict) and ``NAME.json`` (``meta`` + file hash + parameters)."""
    pt, js = checkpoint_paths(name, directory)
    pt.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, pt)
    meta = {"name": name, **meta, "n_parameters": registry.count_parameters(model),
            "sha256": _sha256(pt)}
    js.write_text(json.dumps(meta, indent=2) + "\n")
    return pt, js


def read_meta(name: str, directory: Path | None = None) -> dict:
    """The JSON sidecar of checkpoint ``name``."""
    _, js = checkpoint_paths(name, directory)
    if not js.exists():
        raise CheckpointError(f"{js} is missing: {_fix(name)}")
    try:
        return json.loads(js.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{js} is not valid JSON ({err}): {_fix(name)}") from None


def _fix(name: str) -> str:
    made_by = registry.REGISTRY[name].made_by if name in registry.REGISTRY else ""
    return (f"restore the committed files with `git checkout -- data/checkpoints/{name}.*`, "
            f"or retrain with `{made_by or 'python -m xai_helpers.train ' + name}`")


def load_pretrained(name: str, device: str | torch.device = "cpu",
                    directory: Path | None = None) -> nn.Module:
    """The registered model ``name`` with its committed weights, in eval mode on ``device``.

    Raises
    ------
    ValueError
        ``name`` is not registered.
    CheckpointError
        The checkpoint is missing, corrupt (hash differs from its JSON), unreadable, or its
        tensors do not fit the architecture; the message names the file and the fix.
    """
    model = registry.build(name)
    pt, _ = checkpoint_paths(name, directory)
    if not pt.exists():
        raise CheckpointError(f"no checkpoint for {name!r}: {pt} is missing; {_fix(name)}")
    meta = read_meta(name, directory)
    if meta.get("sha256") and meta["sha256"] != _sha256(pt):
        raise CheckpointError(f"{pt} is corrupt (its SHA-256 differs from the one in "
                              f"{pt.with_suffix('.json').name}); {_fix(name)}")
    try:
        state = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{pt} could not be read ({type(err).__name__}: {err}); "
                              f"{_fix(name)}") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        detail = " ".join(str(err).split())[:400]
        raise CheckpointError(f"{pt} does not fit the architecture of {name!r} ({detail}); "
                              f"was it written by another version? {_fix(name)}") from None
    _check_loaded(name, model, state, meta, pt)
    return model.to(device).eval()


def _check_loaded(name: str, model: nn.Module, state: dict, meta: dict, pt: Path) -> None:
    """Weights that loaded but are not what the JSON says, or not numbers: refused."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if bad:
        raise CheckpointError(f"{pt} holds NaN or Inf in {', '.join(bad[:3])}"
                              f"{' ...' if len(bad) > 3 else ''}; {_fix(name)}")
    counted = registry.count_parameters(model)
    if meta.get("n_parameters") not in (None, counted):
        raise CheckpointError(f"{pt.with_suffix('.json')} says {meta['n_parameters']:,} "
                              f"parameters, the weights have {counted:,}: the two files do not "
                              f"belong together; {_fix(name)}")
    spec = registry.REGISTRY.get(name)
    if spec is not None and meta.get("dataset") not in (None, spec.dataset):
        raise CheckpointError(f"{pt.with_suffix('.json')} says dataset {meta['dataset']!r}, "
                              f"but {name} is registered for {spec.dataset!r}; {_fix(name)}")


def pretrained_table(directory: Path | None = None) -> list[dict]:
    """One row per committed checkpoint, from the JSON files (for notebook 00 and the README)."""
    directory = Path(directory) if directory is not None else config.CHECKPOINT_DIR
    rows = []
    for js in sorted(directory.glob("*.json")):
        meta = json.loads(js.read_text())
        rows.append({
            "model": meta["name"], "dataset": meta.get("dataset", "?"),
            "parameters": meta.get("n_parameters"),
            "test accuracy (%)": round(100 * meta["test_accuracy"], 2),
            "test images": meta.get("test_size"),
            "exact images (%)": (round(100 * meta["test_accuracy_exact"], 1)
                                 if "test_accuracy_exact" in meta else ""),
            "epochs": _epochs_with_parents(meta),
            "paper": (registry.REGISTRY[meta["name"]].paper
                      if meta["name"] in registry.REGISTRY else ""),
        })
    return rows


def _epochs_with_parents(meta: dict) -> int | str | None:
    """A model's epochs, and those of the models its weights started from (``registry.chain``)."""
    name, epochs = meta["name"], meta.get("epochs")
    if name not in registry.REGISTRY or not registry.REGISTRY[name].recipe.init:
        return epochs
    total = sum(registry.spec(n).recipe.epochs for n in registry.chain(name))
    return f"{epochs} ({total} with its parents)"


def model_versions() -> dict[str, dict]:
    """``data/results/model_versions.csv`` by name: every model version trained for the course,
    kept or not, with what changed, its training time and the accuracies measured on it
    (numbers as floats, empty cells as None)."""
    rows = {}
    with open(config.RESULTS_DIR / VERSIONS_CSV, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                try:
                    row[key] = float(value) if value != "" else None
                except ValueError:
                    pass
            rows[row["name"]] = row
    return rows


# at the end: models re-exports this module, so the two import each other; by now every name
# models needs from here exists, whichever of the two is imported first
