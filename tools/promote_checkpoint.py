"""Give a trained checkpoint a registered name: copy ``SRC.pt`` to ``DST.pt`` and re-measure it.

    XAI_DATA_DIR=../shared/data python tools/promote_checkpoint.py gcm_cifar10_v8 gcm_cifar10
    XAI_DATA_DIR=../shared/data python tools/promote_checkpoint.py --dry-run gcm_cifar10_v9 \
        gcm_cifar10

How a new version of a model replaces the one the notebooks use, without retraining: the
weights are copied byte for byte, loaded into ``DST``'s registered architecture (which must
fit them; it may differ in test-time options, e.g. ``GCM(mirror=True)``, but not in options
that change the trained function without parameters: residual adds, the clipping ReLU, skip
connections, ``BUILD_OPTIONS``), and measured again on the full test set. ``DST.json`` is
``SRC.json`` (how the weights were trained) with ``DST``'s name and description, the
accuracies measured now, and ``promoted_from``. The per-epoch history stays the one measured
during training, under ``DST``'s name. ``--dry-run`` measures and prints without writing
anything (does the new version beat the promoted one?).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_helpers import checkpoints, config, data, models, train  # noqa: E402

# parameter-free options under which weights trained with one value compute something else
BUILD_OPTIONS = ("residual", "clip_negative", "skips")


def promote(src: str, dst: str, directory: Path | None = None,
            test: data.ImageData | None = None, dry_run: bool = False) -> dict:
    """Copy checkpoint ``src`` to ``dst``, re-measure it under ``dst``'s architecture on
    ``test`` (default: the full test split of its dataset; required); ``dry_run``: measure
    only, copy and write nothing."""
    spec = models.spec(dst)
    meta = checkpoints.read_meta(src, directory)
    if meta.get("quick"):
        raise ValueError(f"{src} is a quick-mode checkpoint: only full-mode ones are promoted")
    if meta["dataset"] != spec.dataset:
        raise ValueError(f"{src} was trained on {meta['dataset']}, {dst} is for {spec.dataset}")
    test = test if test is not None else data.load(spec.dataset, "test")
    if not test.full:
        raise data.DataUnavailableError(f"promoting needs the full {spec.dataset} test split; "
                                        f"set XAI_DATA_DIR (got {test.describe()})")
    trained = checkpoints.load_pretrained(src, directory=directory)  # hash checked
    weights = trained.state_dict()
    model = models.build(dst)
    for option in BUILD_OPTIONS:
        was, now = getattr(trained, option, None), getattr(model, option, None)
        if was != now:
            raise checkpoints.CheckpointError(
                f"{src} was trained with {option}={was!r}, {dst} is built with {option}={now!r}: "
                f"the same weights would compute a different network; register {dst} with "
                f"{src}'s build first")
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise checkpoints.CheckpointError(f"{src}'s weights do not fit {dst}'s architecture "
                                          f"({' '.join(str(err).split())[:300]})") from None
    model = model.to(config.device()).eval()
    meta = {**meta, "name": dst, "description": spec.description, "paper": spec.paper,
            "promoted_from": src, "test_accuracy": round(train.evaluate(model, test), 6)}
    if not bool(test.exact.all()):
        meta.update(train.jpeg_report(model, test))
    if dry_run:
        return meta
    src_pt, _ = checkpoints.checkpoint_paths(src, directory)
    dst_pt, dst_js = checkpoints.checkpoint_paths(dst, directory)
    shutil.copyfile(src_pt, dst_pt)  # byte for byte: the SHA-256 in the JSON stays true
    dst_js.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", help="the trained checkpoint, e.g. gcm_cifar10_v3")
    parser.add_argument("dst", help="the registered name it becomes, e.g. gcm_cifar10")
    parser.add_argument("--dry-run", action="store_true",
                        help="measure only: write nothing into data/checkpoints")
    args = parser.parse_args(argv)
    meta = promote(args.src, args.dst, dry_run=args.dry_run)
    exact = (f"; {100 * meta['test_accuracy_exact']:.1f}% on the {meta['test_size_exact']:,} "
             f"exact ones, recompressed {100 * meta['test_accuracy_exact_recompressed']:.1f}%"
             if "test_accuracy_exact" in meta else "")
    verb = "would become" if args.dry_run else "<-"
    print(f"{args.dst} {verb} {args.src}: {100 * meta['test_accuracy']:.2f}% on "
          f"{meta['test_size']:,} test images{exact}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
