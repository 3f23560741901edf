"""Give a trained checkpoint a registered name: copy ``SRC.pt`` to ``DST.pt`` and re-measure it.

    XAI_DATA_DIR=../shared/data python tools/promote_checkpoint.py gcm_cifar10_v17 gcm_cifar10 \
        --from build/checkpoints

How a new version of a model replaces the one the notebooks use, without retraining (register
the version's recipe in ``xai_helpers/gcm_models.py``, say ``gcm_cifar10_v17``, and train it
with ``python -m xai_helpers.train gcm_cifar10_v17`` into ``build/checkpoints/`` first): the
weights are copied byte for byte, loaded into ``DST``'s registered architecture (which must
fit them; it may differ in test-time options, e.g. ``GCM(mirror=True)``, but not in options
that change the trained function without parameters: residual adds, the clipping ReLU, skip
connections, ``BUILD_OPTIONS``), and measured again on the full test set. ``DST.json`` is
``SRC.json`` (how the weights were trained) with ``DST``'s name and description, the
accuracies measured now, and ``promoted_from``. Choose the version to promote on validation
data (``python -m xai_helpers.train NAME --validation 5000``), never on the test set: the
test accuracy is measured here, once, when the weights enter the store; record the replaced
version in ``data/results/model_versions.csv``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_helpers import checkpoints, config, data, models, train, verify  # noqa: E402

# parameter-free options under which weights trained with one value compute something else
BUILD_OPTIONS = ("residual", "clip_negative", "skips")


def promote(src: str, dst: str, directory: Path | None = None,
            test: data.ImageData | None = None, source_dir: Path | None = None) -> dict:
    """Copy checkpoint ``src`` (in ``source_dir``, default ``directory``) to ``dst`` in
    ``directory`` (default ``data/checkpoints``), re-measure it under ``dst``'s architecture on
    ``test`` (default: the full test split of its dataset; required) and on the samples."""
    spec = models.spec(dst)
    source_dir = source_dir if source_dir is not None else directory
    meta = checkpoints.read_meta(src, source_dir)
    if meta.get("quick"):
        raise ValueError(f"{src} is a quick-mode checkpoint: only full-mode ones are promoted")
    if meta["dataset"] != spec.dataset:
        raise ValueError(f"{src} was trained on {meta['dataset']}, {dst} is for {spec.dataset}")
    test = test if test is not None else data.load(spec.dataset, "test")
    if not test.full:
        raise data.DataUnavailableError(f"promoting needs the full {spec.dataset} test split; "
                                        f"set XAI_DATA_DIR (got {test.describe()})")
    trained = checkpoints.load_pretrained(src, directory=source_dir)  # hash checked
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
    meta.update(verify.samples_accuracy(model, spec.dataset))
    src_pt, _ = checkpoints.checkpoint_paths(src, source_dir)
    dst_pt, dst_js = checkpoints.checkpoint_paths(dst, directory)
    shutil.copyfile(src_pt, dst_pt)  # byte for byte: the SHA-256 in the JSON stays true
    dst_js.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", help="the trained checkpoint, e.g. gcm_cifar10_v17")
    parser.add_argument("dst", help="the registered name it becomes, e.g. gcm_cifar10")
    parser.add_argument("--from", dest="source_dir", type=Path,
                        default=config.BUILD_DIR / "checkpoints",
                        help="folder holding SRC (default: build/checkpoints)")
    args = parser.parse_args(argv)
    pt, _ = checkpoints.checkpoint_paths(args.dst)
    if pt.exists():
        print(f"replacing the committed {config.show_path(pt)} "
              f"({checkpoints.read_meta(args.dst)['test_accuracy']:.4f} recorded)")
    meta = promote(args.src, args.dst, source_dir=args.source_dir)
    exact = (f"; {100 * meta['test_accuracy_exact']:.1f}% on the {meta['test_size_exact']:,} "
             f"exact ones, recompressed {100 * meta['test_accuracy_exact_recompressed']:.1f}%"
             if "test_accuracy_exact" in meta else "")
    print(f"{args.dst} <- {args.src}: {100 * meta['test_accuracy']:.2f}% on "
          f"{meta['test_size']:,} test images{exact}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
