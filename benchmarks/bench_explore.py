"""Redraw time of notebook 08's widgets (``explore_view.Explorer.render``), per kind of change.

    python benchmarks/bench_explore.py            # ResNet-18 at 224 x 224, and the others
    python benchmarks/bench_explore.py --quick    # ResNet-18 and vgg_cifar10, 1 image each
    python benchmarks/bench_explore.py --record   # also data/results/explore_redraw.json

What a widget change costs is one ``Explorer.render`` call (compute what is new, draw the
figure, encode its PNG as the widget's display does): timed here from a fresh Explorer per
model, in the order a reader meets them, on three images (matplotlib's Grace Hopper photo and
two CIFAR-10 test images, each read at the model's size), median over the images:

first look     the maps of every method but IG and occlusion, without measures: what the
               widgets show first on images of 128 x 128 or more
new image      first look + every applicable method's map, its deletion and insertion
               curves (8 steps) and the random order's, for the top class (complete figure)
new class      the same for the class ranked 2nd
new layer      Grad-CAM and Guided Grad-CAM at another layer (the 2nd-to-last conv)
fewer methods  only Grad-CAM and CAM / CAV shown: everything cached, the figure redrawn
no IG, occl.   a new class (3rd) with every method but Integrated Gradients and occlusion
randomisation  the cascading randomisation check added (4 points of the cascade) for the top
               class, every method

Models: resnet18, vgg11, mobilenet_v3_small (torchvision, 224 x 224; ImageNet weights where
cached, else random weights: the time does not depend on the weights' values) and the course's
vgg_cifar10 (32 x 32). ``torch.get_num_threads()`` and the machine are in the report
(``build/bench/explore.json``).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from xai_helpers import cav_analysis, config, data, explore, explore_view, methods  # noqa: E402
from xai_helpers.train import machine_info, write_report  # noqa: E402

RECORD = "explore_redraw.json"


def redraw(ex: explore_view.Explorer, model: str, image: str, **kwargs) -> float:
    """Seconds for one render and its PNG (what the widget's display sends to the browser)."""
    start = time.perf_counter()
    fig = ex.render(model, image, **kwargs)
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    plt.close(fig)
    return time.perf_counter() - start


def cases(ex: explore_view.Explorer, model: str, image: str) -> dict[str, float]:
    """Seconds of each kind of redraw (module docstring) on one image."""
    net = ex.model(model).model
    fits = methods.applicable(net)
    layers = explore.conv_layers(net)
    few = [m for m in ("gradcam", "cam", "cav") if m in fits][:2]
    fast = [m for m in fits if m not in explore_view.SLOW]
    seconds = {"first look": redraw(ex, model, image, which=fast, curves=False)}
    seconds["new image"] = seconds["first look"] + redraw(ex, model, image)
    steps = {"new class": {"rank": 1},
             "new layer": {"layer": layers[-2] if len(layers) > 1 else None},
             "fewer methods": {"which": few}, "no IG, occl.": {"rank": 2, "which": fast},
             "randomisation": {"randomisation": True}}
    for case, kwargs in steps.items():
        seconds[case] = redraw(ex, model, image, **kwargs)
    return seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="ResNet-18 and vgg_cifar10, 1 image")
    parser.add_argument("--record", action="store_true",
                        help=f"also write the report to data/results/{RECORD}")
    args = parser.parse_args(argv)
    quick = args.quick or config.QUICK
    os.environ.setdefault("XAI_DOWNLOAD", "0")  # never wait for a download while timing
    samples = data.load_samples("cifar10")
    images = {"Grace Hopper": cav_analysis.sample_photo(224)[0],
              "cifar10 test 0": samples.images[0], "cifar10 test 1": samples.images[1]}
    images = dict(list(images.items())[:1 if quick else 3])
    names = ["resnet18", "vgg_cifar10"] if quick else [
        "resnet18", "vgg11", "mobilenet_v3_small", "vgg_cifar10"]
    report = {"machine": machine_info("cpu"), "threads": torch.get_num_threads(),
              "images": list(images), "models": {}}
    print("machine:", report["machine"], "| torch threads:", report["threads"])
    for name in names:
        ex = explore_view.Explorer(images, models=[name])
        start = time.perf_counter()
        loaded = ex.model(name)
        load_s = time.perf_counter() - start
        runs = [cases(ex, name, image) for image in images]
        median = {case: statistics.median(r[case] for r in runs) for case in runs[0]}
        report["models"][name] = {"weights": loaded.weights, "size": loaded.size,
                                  "methods": methods.applicable(loaded.model),
                                  "load_s": load_s, "median_s": median, "per_image_s": runs}
        print(f"\n{name} ({loaded.size} x {loaded.size}; {loaded.weights[:60]}); load "
              f"{load_s:.1f} s; median over {len(images)} image(s), seconds per redraw:")
        for case, s in median.items():
            print(f"  {case:14s} {s:6.2f}")
    write_report(report, "explore", RECORD if args.record else None, quick)
    return report


if __name__ == "__main__":
    main()
