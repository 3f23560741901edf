"""Paper 1's filter-count search: the tiny CNN with n = 1..6 filters per layer, trained fully.

    python -m xai_helpers.filter_search            # every n not yet done, then the table
    python -m xai_helpers.filter_search --n 5 6    # only these (run several in parallel)
    python -m xai_helpers.filter_search --collect  # only (re)write the table

The paper chose 3 filters per layer as the smallest count still reaching 98% test accuracy,
searching down from LeNet's 6 and 16 (seed 000, section 2). Each n is trained with the recipe
of ``tiny_cnn_mnist`` (Adam, batch 100, 100,000 iterations, seed 0) on the full MNIST training
set and measured on the full test set. Runs are resumable (``build/runs/filter_search_nN``);
each finished n writes ``data/results/filter_search/nN.json`` (committed as it comes, so a
search can span sessions); the table goes to
``data/results/filter_search_mnist.csv`` (+ ``.json`` with the learning curves and machine).
n = 3 is not trained twice: it is the committed ``tiny_cnn_mnist`` checkpoint's record.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from . import config, data, models, train

FIELDS = ["n", "conv1_filters", "conv2_filters", "maps", "parameters", "test_accuracy",
          "iterations", "training_time_s", "seed"]
RESULT = "filter_search_mnist"


def _row_file(n: int, root: Path | None = None) -> Path:
    """One finished n's record: under ``root`` (default the committed ``data/results``)."""
    return Path(root or config.RESULTS_DIR) / "filter_search" / f"n{n}.json"


def _from_checkpoint(meta: dict) -> dict:
    return {"n": 3, "conv1_filters": 3, "conv2_filters": 3, "maps": 9,
            "parameters": meta["n_parameters"], "test_accuracy": meta["test_accuracy"],
            "iterations": meta["iterations"], "training_time_s": meta["training_time_s"],
            "seed": meta["seed"], "curve": meta["history_test_accuracy"],
            "machine": meta["machine"], "source": "checkpoint tiny_cnn_mnist"}


def run_one(n: int, device: str | None = None, root: Path | None = None) -> dict:
    """Train the n-filter network with the paper-1 recipe; return (and keep, under ``root``,
    default ``build/results``) its record."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (filters per layer) must be a positive integer, got {n!r}")
    root = Path(root or config.BUILD_DIR / "results")
    recipe = models.PAPER1_RECIPE
    trainset = data.load("mnist", "train")
    test = data.load("mnist", "test")
    if not (trainset.full and test.full):
        raise data.DataUnavailableError("the search needs full MNIST: set XAI_DATA_DIR")
    config.set_seed(recipe.seed)
    model = models.tiny_cnn(n)
    history = train.fit(model, trainset, recipe, device=device,
                        run_dir=config.BUILD_DIR / "runs" / f"filter_search_n{n}")
    row = {"n": n, "conv1_filters": n, "conv2_filters": n, "maps": n * n,
           "parameters": models.count_parameters(model),  # the test set, once, at the end
           "test_accuracy": round(train.evaluate(model, test, device=device), 6),
           "iterations": recipe.max_steps, "training_time_s": round(history.seconds, 1),
           "seed": recipe.seed,
           "train_curve": [round(a, 6) for a in history.train_accuracy],
           "machine": train.machine_info(device), "source": "filter_search"}
    path = _row_file(n, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=1) + "\n")
    return row


def collect(out_dir: Path | None = None) -> list[dict]:
    """Write the CSV table (and JSON with curves) into ``out_dir`` (default ``build/results``)
    from every finished n recorded there; return the rows."""
    out_dir = Path(out_dir or config.BUILD_DIR / "results")
    rows = [json.loads(_row_file(n, out_dir).read_text()) for n in range(1, 7)
            if _row_file(n, out_dir).exists()]
    if (not _row_file(3, out_dir).exists()
            and models.checkpoint_paths("tiny_cnn_mnist")[1].exists()):
        meta = models.read_meta("tiny_cnn_mnist")
        if not meta["quick"]:
            rows.append(_from_checkpoint(meta))
    rows.sort(key=lambda r: r["n"])
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / f"{RESULT}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / f"{RESULT}.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def read_table(path: Path | None = None) -> list[dict]:
    """The committed table as a list of dicts with numbers (what notebook 01 shows)."""
    path = Path(path) if path else config.RESULTS_DIR / f"{RESULT}.csv"
    with open(path) as f:
        return [{k: (float(v) if k in ("test_accuracy", "training_time_s") else int(v))
                 for k, v in row.items()} for row in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="paper 1's filter-count search")
    parser.add_argument("--n", type=int, nargs="*", default=[1, 2, 4, 5, 6])
    parser.add_argument("--collect", action="store_true", help="only write the table")
    parser.add_argument("--device", default=None)
    parser.add_argument("--replace-committed", action="store_true",
                        help="record into data/results/ (the committed table notebook 01 reads; "
                             "default: build/results/)")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.n):
        parser.error(f"--n takes filter counts >= 1, got {args.n}")
    root = config.RESULTS_DIR if args.replace_committed else config.BUILD_DIR / "results"
    if not args.collect:
        for n in args.n:
            if not _row_file(n, root).exists():
                run_one(n, args.device, root)
    print(f"table -> {config.show_path(root / (RESULT + '.csv'))}")
    for row in collect(root):
        print(f"n={row['n']}: {row['parameters']:>6,} parameters, "
              f"{100 * row['test_accuracy']:.2f}% test accuracy")


if __name__ == "__main__":
    main()
