"""Tune the GCM recipe on CIFAR-10's 45,000 / 5,000 split (paper 2: how Table 4 was chosen).

    XAI_DATA_DIR=../shared/data python tools/tune_gcm.py res base --epochs 20

Each variant trains on the first 45,000 training images and is measured on the last 5,000
(exact images, never seen in training); the results are merged into
``data/results/validation/gcm_tuning.json`` (one record per variant and epoch count). A run
resumes from ``build/runs/tune-VARIANT-eN/state.pt`` if it was stopped. ``--views`` measures
finished runs with shifted views averaged at inference (``GCM(shifts=s)``), without training;
``--view-sets`` with other sets of moves (:data:`VIEW_SETS`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from xai_helpers import config, data, gcm_models, models, train  # noqa: E402
from xai_helpers.gcm import GCM  # noqa: E402

BASE = gcm_models.GCM_RECIPE
TEACHERS = ("cnn_cifar10", "vgg_cifar10", "gcm_cifar10_v1")
VARIANTS = {  # name: (model builder, recipe)
    "base": (lambda: GCM(10, 3), BASE),
    "res": (lambda: GCM(10, 3, residual=True), BASE),
    "res_ls": (lambda: GCM(10, 3, residual=True), replace(BASE, label_smoothing=0.1)),
    "res_jpeg9": (lambda: GCM(10, 3, residual=True), replace(BASE, jpeg_p=0.9)),
    "res_wd2": (lambda: GCM(10, 3, residual=True), replace(BASE, weight_decay=2e-4)),
    "res_kd": (lambda: GCM(10, 3, residual=True),
               replace(BASE, teachers=TEACHERS, distill_weight=0.7, temperature=4.0)),
    "res_kd_clean": (lambda: GCM(10, 3, residual=True),
                     replace(BASE, teachers=TEACHERS, distill_weight=0.7, temperature=4.0,
                             clean_teacher=True)),
    "res_kd_jpeg9": (lambda: GCM(10, 3, residual=True),
                     replace(BASE, teachers=TEACHERS, distill_weight=0.7, temperature=4.0,
                             jpeg_p=0.9)),
    # the clipped GCM (section 4.3): gcm_cifar10_clip_v3 (residual adds + distillation) failed
    "clip": (lambda: GCM(10, 3, clip_negative=True), BASE),
    "clip_res": (lambda: GCM(10, 3, clip_negative=True, residual=True), BASE),
    "clip_res_kd": (lambda: GCM(10, 3, clip_negative=True, residual=True),
                    replace(BASE, teachers=TEACHERS, distill_weight=0.7, temperature=4.0)),
    "clip_kd": (lambda: GCM(10, 3, clip_negative=True),
                replace(BASE, teachers=TEACHERS, distill_weight=0.7, temperature=4.0)),
}
RECORD = config.RESULTS_DIR / "validation" / "gcm_tuning.json"  # committed (--record)
OUT = config.BUILD_DIR / "results" / "validation" / "gcm_tuning.json"


def mirror_accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of the mean softmax over the image and its mirror image."""
    probs = sum(train.predict(model, view).softmax(1) for view in (images, images.flip(3)))
    return (probs.argmax(1) == labels).float().mean().item()


def split(validation: int = 5000) -> tuple[data.ImageData, data.ImageData]:
    full = data.load("cifar10", "train")
    cut = len(full) - validation
    return full.subset(slice(0, cut)), full.subset(slice(cut, None))


def _finished_run(variant: str, epochs: int) -> tuple[GCM, dict[str, data.ImageData]]:
    """The finished tuning run's model (mirror-averaged maps) and the validation images, exact
    and JPEG-75-recompressed."""
    run = config.BUILD_DIR / "runs" / f"tune-{variant}-e{epochs}"
    state = torch.load(run / "state.pt", weights_only=True)
    if state["epoch"] != epochs:
        raise RuntimeError(f"tune-{variant}-e{epochs} stopped after epoch {state['epoch']}")
    net = VARIANTS[variant][0]()
    net.load_state_dict(state["model"])
    net.mirror = True  # parameter-free options: the same weights
    _, val = split()
    return net, {"exact": val, "jpeg": replace(val, images=data.jpeg_recompress(val.images))}


def _accuracies(net: GCM, images: dict[str, data.ImageData]) -> dict:
    """Accuracy on the exact and the JPEG-75 validation images, and their 10/90 mix (the test
    set's)."""
    acc = {k: train.evaluate(net, v) for k, v in images.items()}
    return {"views": len(net.views()), "exact": round(acc["exact"], 6),
            "jpeg": round(acc["jpeg"], 6),
            "mixed": round(0.1 * acc["exact"] + 0.9 * acc["jpeg"], 6)}


def views_report(variant: str, epochs: int, shifts=(0, 1, 2, 3)) -> dict:
    """The finished run's weights with mirror-averaged maps and ``GCM(shifts=s)``: accuracy on
    the validation images, exact, JPEG-75-recompressed, and the 10/90 mix (the test set's)."""
    net, images = _finished_run(variant, epochs)
    report = {}
    for s in shifts:
        net.shifts = s
        report[f"shifts={s}"] = _accuracies(net, images)
        print(variant, f"shifts={s}", report[f"shifts={s}"], flush=True)
    return report


def _cross(*steps: int) -> list[tuple[int, int]]:
    return [(0, 0)] + [m for s in steps for m in ((s, 0), (-s, 0), (0, s), (0, -s))]


# other sets of moves than GCM(shifts=s)'s cross (each also mirrored): more views do not help
VIEW_SETS = {"cross2": _cross(2), "cross12": _cross(1, 2), "cross23": _cross(2, 3),
             "grid2": [(a, b) for a in (-2, 0, 2) for b in (-2, 0, 2)],
             "grid1": [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)],
             "diag2": [(0, 0), (2, 2), (2, -2), (-2, 2), (-2, -2)]}


def view_sets_report(variant: str, epochs: int) -> dict:
    """Like :func:`views_report` for the moves of :data:`VIEW_SETS` (the model's
    ``views()`` replaced by each set, mirrored too; maps moved back and averaged as usual)."""
    net, images = _finished_run(variant, epochs)
    report = {}
    for name, moves in VIEW_SETS.items():
        net.views = lambda moves=moves: [(f, dy, dx) for f in (False, True) for dy, dx in moves]
        report[name] = _accuracies(net, images)
        print(variant, name, report[name], flush=True)
    return report


def run(variant: str, epochs: int, validation: int = 5000) -> dict:
    build, recipe = VARIANTS[variant]
    tr, val = split(validation)
    config.set_seed(recipe.seed)
    model = build()
    history = train.fit(model, tr, recipe, validation=val, epochs=epochs, compile=True, bf16=True,
                        run_dir=config.BUILD_DIR / "runs" / f"tune-{variant}-e{epochs}",
                        teacher=train.teacher_for(recipe, tr))
    mirror = mirror_accuracy(model, val.images, val.labels)
    # the offline test set is 90% JPEG-75-degraded: the same degradation of the validation images
    jpeg = mirror_accuracy(model, data.jpeg_recompress(val.images), val.labels)
    return {"variant": variant, "epochs": epochs, "recipe": models.recipe_dict(recipe),
            "model": repr(model).splitlines()[0], "n_parameters": models.count_parameters(model),
            "validation_accuracy": round(history.validation_accuracy[-1], 6),
            "validation_accuracy_mirror_averaged": round(mirror, 6),
            "validation_jpeg_accuracy_mirror_averaged": round(jpeg, 6),
            "validation_mixed_estimate_mirror_averaged": round(0.1 * mirror + 0.9 * jpeg, 6),
            "final_train_accuracy": round(history.train_accuracy[-1], 6),
            "history_validation_accuracy": [round(a, 4) for a in history.test_accuracy],
            "training_time_s": round(history.seconds, 1), "machine": train.machine_info("cpu")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--views", action="store_true",
                        help="measure finished runs with shifted views (GCM(shifts=s))")
    parser.add_argument("--view-sets", action="store_true",
                        help="measure finished runs with the other sets of views (VIEW_SETS)")
    parser.add_argument("--record", action="store_true",
                        help=f"write into the committed {config.show_path(RECORD)} (default: "
                             f"{config.show_path(OUT)})")
    args = parser.parse_args()
    global OUT
    if args.record:
        OUT = RECORD
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    for variant in args.variants:
        key = f"{variant}-e{args.epochs}"
        if args.views or args.view_sets:
            field = "validation_by_shifts" if args.views else "validation_by_view_set"
            report = (views_report if args.views else view_sets_report)(variant, args.epochs)
            results = json.loads(OUT.read_text())
            results[key][field + "_mirror_averaged"] = report
            OUT.write_text(json.dumps(results, indent=1) + "\n")
            continue
        record = run(variant, args.epochs)
        results = json.loads(OUT.read_text()) if OUT.exists() else {}  # read after the run:
        results[key] = record  # another variant may have finished meanwhile
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=1) + "\n")
        print(f"{variant}, {args.epochs} epochs: validation {record['validation_accuracy']:.4f}, "
              f"mirror-averaged {record['validation_accuracy_mirror_averaged']:.4f}, JPEG-75 "
              f"{record['validation_jpeg_accuracy_mirror_averaged']:.4f}, 10/90 mix "
              f"{record['validation_mixed_estimate_mirror_averaged']:.4f}", flush=True)


if __name__ == "__main__":
    threads = int(os.environ.get("XAI_THREADS", "0"))  # 1: two variants side by side
    if threads:
        torch.set_num_threads(threads)
    main()
