"""CAV benchmark (paper 3, seed 003): contribution ratios at VGG-16's five max-pooling outputs.

    make bench      (or: python benchmarks/bench_cav.py [--size 224] [--threads 1])

On torchvision's VGG-16 (random weights: ``weights=None``; the time does not depend on the
weights) and one random 224 x 224 image on the CPU, measured in one run, best of ``--repeats``:

(a) the fast path, ``cav.explain(model, x, target, layers)`` for all five max-pooling outputs
    (``features.4, .9, .16, .23, .30``, the paper's points (5) to (1)), as a ratio to one
    forward + backward pass of the same model down to the input (the gradient of the score
    with respect to the image, as saliency computes it); also reported: the ratio to a
    training-style ``model(x)[0, target].backward()`` that also fills the parameters'
    gradients (slower: VGG-16's first classifier layer alone has 103 M weights);
(b) the paper's layer-by-layer walk (``method="reference"``) on the same layers;
(c) captum's LRP (epsilon rule) on the same layers (``LayerLRP`` with the five modules).

Checks, printed: fast == reference (max relative error) and captum == ratios x score.
Target (issue): (a) <= 2.0. Results go to build/bench/cav.json (``--out`` to change; use it for
smoke runs such as ``--size 64 --out /tmp/cav.json``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
import warnings
from pathlib import Path

import torch
import torchvision
from captum.attr import LayerLRP

from xai_helpers import cav, config
from xai_helpers.train import machine_info

LAYERS = ["features.4", "features.9", "features.16", "features.23", "features.30"]
TARGET_RATIO = 2.0


def best_time(fn, repeats: int) -> tuple[object, float]:
    out, best = None, float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - tick)
    return out, best


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224, help="image side (default 224)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1; 0 = torch's own choice)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--out", type=Path, default=config.BUILD_DIR / "bench" / "cav.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None).eval()
    x = torch.rand(1, 3, args.size, args.size)
    with torch.no_grad():
        target = int(model(x).argmax(1))
    report = {"machine": machine_info("cpu"), "threads": torch.get_num_threads(),
              "load_average_1_5_15_min": list(os.getloadavg()),
              "model": "torchvision vgg16(weights=None)", "image": [1, 3, args.size, args.size],
              "layers": LAYERS, "target_class": target, "repeats": args.repeats}
    print("machine:", report["machine"], f"| threads {report['threads']} | load average "
          f"{' '.join(f'{v:.2f}' for v in report['load_average_1_5_15_min'])}")
    print(f"VGG-16, random weights, one {args.size} x {args.size} image, class {target}")

    def forward_backward():  # to the input; autograd.grad skips the parameters' gradients
        xg = x.clone().requires_grad_(True)
        return torch.autograd.grad(model(xg)[0, target], xg)[0]

    def training_step():  # also the parameters' gradients (about 138 M values)
        model.zero_grad(set_to_none=False)
        model(x)[0, target].backward()

    _, t_plain = best_time(forward_backward, args.repeats)
    _, t_train = best_time(training_step, args.repeats)
    model.zero_grad(set_to_none=True)
    fast, t_fast = best_time(lambda: cav.explain(model, x, target, LAYERS), args.repeats)
    ratio = t_fast / t_plain
    report["a_fast"] = {"forward_backward_s": t_plain, "with_parameter_gradients_s": t_train,
                        "fast_s": t_fast, "ratio": ratio, "ratio_to_with_parameter_gradients":
                        t_fast / t_train, "target": TARGET_RATIO, "pass": ratio <= TARGET_RATIO}
    print(f"(a) forward + backward (to the input) {t_plain:.3f} s, with the parameters' "
          f"gradients {t_train:.3f} s; fast path, 5 layers {t_fast:.3f} s: ratio {ratio:.2f} "
          f"({'PASS' if ratio <= TARGET_RATIO else 'FAIL'}, <= {TARGET_RATIO}), "
          f"{t_fast / t_train:.2f} x the pass with parameter gradients")

    reference, t_ref = best_time(lambda: cav.explain(model, x, target, LAYERS,
                                                     method="reference"), args.repeats)
    errors = {name: rel_err(fast[name], reference[name]) for name in LAYERS}
    report["b_reference"] = {"seconds": t_ref, "ratio": t_ref / t_plain,
                             "max_rel_err_fast_vs_reference": max(errors.values())}
    print(f"(b) reference walk {t_ref:.3f} s ({t_ref / t_plain:.2f} x forward + backward); "
          f"fast vs reference: max relative error {max(errors.values()):.1e}")

    lrp_model = copy.deepcopy(model)  # captum attaches rules and hooks to the modules
    lrp = LayerLRP(lrp_model, [lrp_model.get_submodule(name) for name in LAYERS])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Input Tensor 0 did not already require gradients"
        captum, t_lrp = best_time(lambda: lrp.attribute(x.clone().requires_grad_(True),
                                                        target=target), args.repeats)
    with torch.no_grad():
        score = model(x)[0, target]
    lrp_errors = [rel_err(c.detach(), fast[name] * score) for c, name in zip(captum, LAYERS,
                                                                               strict=True)]
    report["c_captum_lrp"] = {"seconds": t_lrp, "ratio": t_lrp / t_plain,
                              "max_rel_err_vs_ratios_times_score": max(lrp_errors)}
    print(f"(c) captum LayerLRP (epsilon), 5 layers {t_lrp:.3f} s ({t_lrp / t_plain:.2f} x "
          f"forward + backward); captum vs ratios x score: max relative error "
          f"{max(lrp_errors):.1e}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {args.out}")
    return report


if __name__ == "__main__":
    main()
