"""Decline rate (paper 2, 4.7, Eq. 13) of every method in the four ways, on CIFAR-10's test set.

    python benchmarks/bench_decline.py                      # full: all test images
    python benchmarks/bench_decline.py --record             # ... and write data/results/
    python benchmarks/bench_decline.py --n 500              # the first 500 images
    python benchmarks/bench_decline.py --quick              # 200 images (also XAI_QUICK=1)
    python benchmarks/bench_decline.py --untrained --n 20   # smoke test, untrained models

Methods (notebook 06): on the plain CNN ``cnn_cifar10`` GB, GGCAM, Grad-CAM, CAM and, beyond
the paper, CAV, single-pass occlusion and Integrated Gradients; on ``gcm_cifar10`` GCM's CWM and
CCM. For each: the rows of :func:`xai_helpers.decline.decline_rate` (maps of all 10 classes,
the four ways) and the images/s of that computation; on a small subset of the same run, the
speed-up of the batched computation (all classes of a batch at once) over a per-image,
per-class loop of the reference (captum, or the plain formula; one call per image and class),
and over the reference on the batch repeated 10 times (captum's way of batching classes).

Every run writes ``decline_rate_cifar10.csv`` into ``build/results/``; a full run (no --n,
--quick or --untrained, and the full 10,000-image test set found) with ``--record`` writes it
into ``data/results/`` instead, the committed table: ``decline_rate_cifar10.csv`` (method,
way, accuracy_a, accuracy_b, decline_rate, n_images, decline_rate_low, decline_rate_high:
the 95 % bootstrap interval over the images, :mod:`xai_helpers.ranking`), its per-image
results ``decline_rate_cifar10_per_image.npz`` (:func:`xai_helpers.decline.write_results`,
read by notebook 06 for its intervals) and
``data/results/decline_rate_cifar10.json`` (machine, timings). The JSON always goes to
``build/bench/decline.json``.
Target (issue): the full test set, all methods, four ways, <= 30 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import shutil
import time

import torch

from xai_helpers import config, data, models
from xai_helpers.decline import WAYS, decline_rate, write_results
from xai_helpers.methods import attribute
from xai_helpers.ranking import bootstrap
from xai_helpers.train import machine_info, write_report

PLAN = {"cnn_cifar10": ("guided_backprop", "guided_gradcam", "gradcam", "cam", "cav",
                        "occlusion", "integrated_gradients"),
        "gcm_cifar10": ("cwm", "ccm")}
NAME = "decline_rate_cifar10"
BUDGET_S = 30 * 60


def load_models(untrained: bool) -> dict:
    if untrained:
        return {name: models.build(name).eval() for name in PLAN}
    try:
        return {name: models.load_pretrained(name) for name in PLAN}
    except models.CheckpointError as err:
        raise SystemExit(f"bench_decline needs the trained checkpoints {', '.join(PLAN)}: {err}"
                         f"\nFor a smoke test without them: python benchmarks/bench_decline.py "
                         f"--untrained --n 20") from None


def seconds(fn) -> float:
    tick = time.perf_counter()
    fn()
    return time.perf_counter() - tick


def speed(method: str, model, images: torch.Tensor, loop_n: int) -> dict:
    """Seconds per image of the three ways to get all 10 class maps (same images)."""
    with torch.no_grad():
        k = model(images[:1]).shape[1]
    loop = seconds(lambda: [attribute(method, model, images[i:i + 1], c, reference=True)
                            for i in range(loop_n) for c in range(k)]) / loop_n
    repeated = seconds(lambda: attribute(method, model, images, reference=True)) / len(images)
    batched = seconds(lambda: attribute(method, model, images)) / len(images)
    return {"loop_s_per_image": loop, "repeated_s_per_image": repeated,
            "batched_s_per_image": batched, "speedup_over_loop": loop / batched,
            "speedup_over_repeated": repeated / batched}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=None, help="use the first N test images")
    parser.add_argument("--quick", action="store_true", help="200 images")
    parser.add_argument("--untrained", action="store_true",
                        help="freshly initialised models (smoke test; no checkpoints needed)")
    parser.add_argument("--speed-n", type=int, default=50,
                        help="images for the batched / repeated timings (default 50)")
    parser.add_argument("--loop-n", type=int, default=2,
                        help="images for the per-image-per-class loop (default 2)")
    parser.add_argument("--batch-size", type=int, default=250, help="images per batch")
    parser.add_argument("--record", action="store_true",
                        help="full mode only: write the committed table and record into "
                             "data/results/ (default: build/results/)")
    args = parser.parse_args(argv)
    quick = args.quick or config.QUICK
    n = args.n if args.n is not None else (200 if quick else None)
    start = time.perf_counter()
    config.set_seed()
    test = data.load("cifar10", "test", n=n, verbose=False)
    full = test.full and not (quick or args.untrained or args.n is not None)
    nets = load_models(args.untrained)
    report = {"machine": machine_info("cpu"), "threads": torch.get_num_threads(),
              "test_set": test.describe(), "untrained": args.untrained, "full_mode": full,
              "methods": {}}
    print("machine:", report["machine"], "| torch threads:", report["threads"])
    print("test set:", report["test_set"], "| full mode:", full)
    rows = []
    subset = test.images[:min(args.speed_n, len(test))]
    for model_name, names in PLAN.items():
        model = nets[model_name]
        for method in names:
            tick, cpu = time.perf_counter(), time.process_time()
            found = decline_rate(model, method, test.images, test.labels,
                                 batch_size=args.batch_size)
            spent, cpu = time.perf_counter() - tick, time.process_time() - cpu
            timing = speed(method, model, subset, min(args.loop_n, len(subset)))
            rows += found
            report["methods"][method] = {"model": model_name, "seconds": spent,
                                         "cpu_seconds": cpu, "images_per_s": len(test) / spent,
                                         **timing}
            rates = "  ".join(f"({r.way}) {r.decline_rate:+.3f}" for r in found)
            print(f"{method:21s} {model_name:12s} A={found[0].accuracy_a:.4f}  {rates}  "
                  f"{len(test) / spent:7.1f} img/s  x{timing['speedup_over_loop']:.0f} over "
                  f"the loop, x{timing['speedup_over_repeated']:.1f} over repeated batch")
    report["total_s"] = time.perf_counter() - start
    report["n_images"] = len(test)
    spent = sum(m["seconds"] for m in report["methods"].values())
    report["projected_full_s"] = spent * data.DATASETS["cifar10"].n_test / len(test)
    report["within_budget"] = report["total_s"] <= BUDGET_S if full else None
    print(f"total {report['total_s']:.0f} s for {len(test):,} images; the decline rates alone "
          f"projected to the full test set: {report['projected_full_s']:.0f} s (budget "
          f"{BUDGET_S} s on a 2-core CPU)")
    if args.record and not full:
        raise SystemExit("--record keeps full runs only (all 10,000 test images, trained "
                         "models, no --n / --quick)")
    out_dir = config.RESULTS_DIR if args.record else config.BUILD_DIR / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    intervals = {}  # bootstrap over the images, 95 %: columns decline_rate_low / _high
    for way in WAYS:
        for method, iv in bootstrap({r.method: r for r in rows if r.way == way}).items():
            intervals[method, way] = {"decline_rate_low": iv.low, "decline_rate_high": iv.high}
    written_csv = write_results(rows, out_dir / f"{NAME}.csv", intervals)
    print(f"-> {written_csv} ({len(rows)} rows: {len(rows) // len(WAYS)} methods x "
          f"{len(WAYS)} ways, 95 % bootstrap intervals) and its per-image results "
          f"{NAME}_per_image.npz")
    written = write_report(report, "decline")
    if args.record:
        shutil.copyfile(written, config.RESULTS_DIR / f"{NAME}.json")
        print(f"-> {config.RESULTS_DIR / f'{NAME}.json'}")
    return report


if __name__ == "__main__":
    main()
