"""Re-measure every committed checkpoint on the full test set in ``$XAI_DATA_DIR``.

    XAI_DATA_DIR=../shared/data python -m xai_helpers.verify      # what `make verify` runs
    XAI_DATA_DIR=../shared/data python -m xai_helpers.verify --record   # rewrite the JSONs

Fails (exit 1) when a measured accuracy differs from the one recorded in the checkpoint's JSON
by more than ``--tolerance`` percentage points (default 0.1), or when a checkpoint does not load.
A checkpoint whose dataset is not in ``$XAI_DATA_DIR`` (SVHN, say) is reported as skipped. The
paper's accuracy, where it gives one, is printed beside for reference, not compared.

``--record`` writes what it measured into the JSONs instead (the test-set figures and the
accuracy on the committed samples, :func:`samples_accuracy`): for when the weights stay and the
way they are evaluated changes. ``make test`` re-measures the samples figure of every JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from . import config, data, models
from .scoring import evaluate, measure_test


def samples_accuracy(model, dataset: str) -> dict:
    """``{"test_size_samples", "test_accuracy_samples"}``: ``model`` on the committed sample of
    ``dataset``'s test split (:func:`data.load_samples`; CIFAR-10: the 1,000 exact test images,
    MNIST and the house digits: the whole test set)."""
    sample = data.load_samples(dataset, "test")
    return {"test_size_samples": len(sample),
            "test_accuracy_samples": round(evaluate(model, sample), 6)}


def verify(tolerance: float = 0.1, directory: Path | None = None,
           record: bool = False) -> list[dict]:
    """One row per checkpoint: model, dataset, recorded and measured accuracy (%), status."""
    directory = Path(directory) if directory is not None else config.CHECKPOINT_DIR
    rows, cache = [], {}
    for js in sorted(directory.glob("*.json")):
        name = js.stem
        paper = models.REGISTRY[name].paper_accuracy if name in models.REGISTRY else None
        row = {"model": name, "dataset": "?", "recorded": None, "measured": None,
               "paper": None if paper is None else 100 * paper}
        try:
            meta = models.read_meta(name, directory)
            row["dataset"], row["recorded"] = meta["dataset"], 100 * meta["test_accuracy"]
            if row["dataset"] not in cache:
                path = config.data_dir() / f"{data.source_name(row['dataset'])}.npz"
                cache[row["dataset"]] = (data.load(row["dataset"], "test")
                                         if path.exists() else None)
            test = cache[row["dataset"]]
            if test is None:
                row["status"] = (f"skipped: no {data.source_name(row['dataset'])}.npz in "
                                 f"{config.data_dir()}")
            elif not test.full:
                row["status"] = f"FAILED: {test.describe()} is not the full test set"
            else:
                model = models.load_pretrained(name, config.device(), directory)
                row["measured"] = 100 * evaluate(model, test)
                diff = abs(row["measured"] - row["recorded"])
                row["status"] = "ok" if diff <= tolerance else f"FAILED: differs by {diff:.2f}"
                if record:
                    meta.update({**measure_test(model, row["dataset"]),
                                 **samples_accuracy(model, row["dataset"]),
                                 "measured": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")})
                    js.write_text(json.dumps(meta, indent=2) + "\n")
                    row["status"] = f"recorded (was {row['recorded']:.2f})"
        except Exception as err:  # report every checkpoint, then fail at the end
            row["status"] = f"FAILED: {type(err).__name__}: {err}"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="re-measure the committed checkpoints")
    parser.add_argument("--tolerance", type=float, default=0.1, help="percentage points")
    parser.add_argument("--record", action="store_true",
                        help="write the measured accuracies into the checkpoints' JSON files")
    args = parser.parse_args(argv)
    if not os.environ.get("XAI_DATA_DIR"):
        print("set XAI_DATA_DIR to a folder with the full datasets ({name}.npz), e.g.\n"
              "  XAI_DATA_DIR=../shared/data make verify")
        return 2
    rows = verify(args.tolerance, record=args.record)
    if not rows:
        print(f"no checkpoints in {config.CHECKPOINT_DIR}")
        return 1
    print(f"\n{'model':<22}{'dataset':<15}{'recorded %':>11}{'measured %':>11}{'paper %':>9}"
          f"  status")
    for r in rows:
        rec, mea, pap = (f"{r[k]:.2f}" if r[k] is not None else "-"
                         for k in ("recorded", "measured", "paper"))
        print(f"{r['model']:<22}{r['dataset']:<15}{rec:>11}{mea:>11}{pap:>9}  {r['status']}")
    print("paper %: the paper's own figure, on its own (uncompressed) test set, for reference")
    failed = [r for r in rows if r["status"].startswith("FAILED")]
    checked = sum(r["status"].startswith(("ok", "recorded")) for r in rows)
    skipped = len(rows) - checked - len(failed)
    print(f"\n{checked} verified, {len(failed)} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
