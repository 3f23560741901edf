"""All-classes speed of the course's batched maps against peer libraries and a physical limit.

    python benchmarks/bench_peers.py              # the first 50 CIFAR-10 test images, best of 3
    python benchmarks/bench_peers.py --n 200      # the first 200 images
    python benchmarks/bench_peers.py --quick      # 8 images, 1 repeat (also XAI_QUICK=1)

On ``cnn_cifar10`` and the same N images, the seconds per image to get the maps of all 10
classes of guided_backprop, gradcam, guided_gradcam, cam, integrated_gradients (32 steps),
occlusion (window 8, stride 8, fill 0) and cav (input x gradient), four ways (columns, printed
in ms per image; the JSON ``build/bench/peers.json`` holds seconds per image):

course    ``methods.attribute(method, cnn, x)``: all images and classes in batched passes.
captum    a loop over the 10 classes, captum's class on the whole batch with target=c
          (GuidedBackprop; LayerGradCam + bicubic interpolate + clamp, i.e.
          ``class_maps.gradcam_reference``; GuidedGradCam(interpolate_mode="bicubic");
          IntegratedGradients gausslegendre; Occlusion (3, 8, 8) with 16 perturbations per
          eval; InputXGradient). captum has no CAM: ``class_maps.cam_reference`` (the formula,
          looped over channels) stands in, marked ``*``.
grad-cam  pytorch-grad-cam (if installed), looping over the classes where it has the method:
          GradCAM on the batch with ``[ClassifierOutputTarget(c)] * N``; GuidedBackpropReLUModel,
          which takes one image and one class per call (a loop over both); Guided Grad-CAM =
          both multiplied (its README). Its maps are resized bilinearly and scaled to [0, 1]
          per image: only the speed is comparable. Both call ``loss.backward()``, so they also
          pay for the parameters' gradients (the model as a user passes it).
limit     what any method must at least compute for all classes: one forward pass of the batch
          and one backward pass per class to the map's layer (the input; Grad-CAM: the layer
          feeding the pooling); CAM: one forward pass; IG: the input limit x 32 steps;
          occlusion: the forward passes of the images and their 16 occluded copies, in
          chunks of 512 and memory layout as the course runs them.
x captum, x grad-cam   the peer's time / the course's time (how many times faster the course is)
/limit    the course's time / the limit (1 = at the physical limit)

Each call is warmed up once on 2 images, then timed; the best of ``--repeats`` timings
counts (more, up to 20, while a call's timings total under ``--min-s`` = 1 s: on a shared
2-core machine single timings vary by +-30%). The same run checks that the captum loop's
Guided Backpropagation and Grad-CAM maps equal the course's (allclose, rtol 1e-4, atol 1e-5 x
the largest value). ``make bench`` runs it with no arguments (about 2 minutes on 2 CPU cores);
``--record`` also copies the report to ``data/results/peers_speed_cifar10.json``.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import torch
from captum.attr import GuidedBackprop, GuidedGradCam, InputXGradient
from torch import nn

from xai_helpers import class_maps, config, data, models
from xai_helpers.methods import attribute
from xai_helpers.train import machine_info, write_report

try:
    from pytorch_grad_cam import GradCAM, GuidedBackpropReLUModel
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
except ImportError:  # an optional peer (the dev extra)
    GradCAM = None

METHODS = ("guided_backprop", "gradcam", "guided_gradcam", "cam", "integrated_gradients",
           "occlusion", "cav")
K = 10  # CIFAR-10's classes
WAYS = ("course", "captum", "gradcam_lib", "limit")


def best_time(fn, x: torch.Tensor, repeats: int, min_s: float = 0.0):
    """(best seconds per image of ``fn(x)`` after a warm-up on 2 images, over ``repeats``
    timings, or more (up to 20) while they total under ``min_s``; the last result)."""
    fn(x[:2])
    best, out, spent, count = float("inf"), None, 0.0, 0
    while count < repeats or (spent < min_s and count < 20):
        tick = time.perf_counter()
        out = fn(x)
        took = time.perf_counter() - tick
        best, spent, count = min(best, took), spent + took, count + 1
    return best / len(x), out


def captum_loop(model: nn.Module, method: str):
    """``fn(x)`` -> the 10 classes' maps, N x 10 x C' x H x W, by one captum call per class."""
    layer = model.get_submodule(class_maps.default_layer(model))
    calls = {
        "guided_backprop": lambda x, t: GuidedBackprop(model).attribute(x, target=t),
        "gradcam": lambda x, t: class_maps.gradcam_reference(model, x, t),
        "guided_gradcam": lambda x, t: GuidedGradCam(model, layer).attribute(
            x, target=t, interpolate_mode="bicubic"),
        "cam": lambda x, t: class_maps.cam_reference(model, x, t),
        "integrated_gradients": lambda x, t: class_maps.integrated_gradients_reference(
            model, x, t),
        "occlusion": lambda x, t: class_maps.occlusion_reference(model, x, t),
        "cav": lambda x, t: InputXGradient(model).attribute(x, target=t),
    }
    call = calls[method]
    return lambda x: torch.stack([call(x, torch.full((len(x),), c)) for c in range(K)], 1)


def gradcam_lib_loop(model: nn.Module, gb_model: nn.Module, method: str):
    """``fn(x)`` by pytorch-grad-cam looping over the classes (None: no such method or not
    installed). ``gb_model``: a copy that GuidedBackpropReLUModel may rewire."""
    def cams(x):  # K x N x H x W numpy, [0, 1] per map
        with GradCAM(model=model, target_layers=[model.features]) as cam:
            return [cam(input_tensor=x, targets=[ClassifierOutputTarget(c)] * len(x))
                    for c in range(K)]

    def guided(x):  # K x N x H x W x C numpy; one image and one class per call
        gb = GuidedBackpropReLUModel(model=gb_model, device="cpu")
        return [[gb(x[i:i + 1].clone(), target_category=c) for i in range(len(x))]
                for c in range(K)]

    def guided_gradcam(x):  # the README's recipe: cam_mask (3 channels) * gb
        return [[g * m[..., None] for g, m in zip(gbs, maps, strict=True)]
                for gbs, maps in zip(guided(x), cams(x), strict=True)]

    if GradCAM is None:
        return None
    return {"gradcam": cams, "guided_backprop": guided,
            "guided_gradcam": guided_gradcam}.get(method)


def gradient_limit(model: nn.Sequential, split: int):
    """One forward pass, then one backward pass per class to the output of ``model[:split]``
    (0: the input)."""
    head, tail = model[:split], model[split:]

    def run(x):
        with torch.no_grad():
            act = head(x).detach()  # never the caller's tensor
        act.requires_grad_(True)
        logits = tail(act)
        for c in range(logits.shape[1]):
            torch.autograd.grad(logits[:, c].sum(), act, retain_graph=True)
    return run


def occluded(x: torch.Tensor) -> torch.Tensor:
    """16 N x C x H x W: each image with one of the 16 8 x 8 patches set to 0, built as
    ``class_maps.occlusion`` builds them (torch.where's broadcast makes them channels-last,
    which this CPU's convolutions run about 20% faster than contiguous NCHW)."""
    masks = torch.zeros(16, 1, 32, 32, dtype=torch.bool)
    for p in range(16):
        masks[p, :, 8 * (p // 4):8 * (p // 4) + 8, 8 * (p % 4):8 * (p % 4) + 8] = True
    return torch.where(masks, 0.0, x[:, None]).flatten(0, 1)


def limits(model: nn.Sequential) -> dict:
    """``method -> (fn, factor)``: the limit is ``factor`` x the time of ``fn``."""
    features = [name for name, _ in model.named_children()].index("features") + 1
    to_input = gradient_limit(model, 0)

    def forward(x, chunk: int = 512):  # in the chunks of class_maps.occlusion
        with torch.no_grad():
            for i in range(0, len(x), chunk):
                model(x[i:i + chunk])
    return {"guided_backprop": (to_input, 1), "gradcam": (gradient_limit(model, features), 1),
            "guided_gradcam": (to_input, 1), "cam": (forward, 1),
            "integrated_gradients": (to_input, class_maps.IG_STEPS),
            "occlusion": (lambda x: [forward(x), forward(occluded(x))], 1),
            "cav": (to_input, 1)}


def agrees(peer: torch.Tensor, course: torch.Tensor) -> bool:
    scale = course.abs().max().item()
    return peer.shape == course.shape and torch.allclose(peer, course, rtol=1e-4,
                                                         atol=1e-5 * scale)


RECORD = "peers_speed_cifar10.json"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=None, help="the first N test images (50)")
    parser.add_argument("--repeats", type=int, default=None, help="timings per call (3)")
    parser.add_argument("--min-s", type=float, default=None,
                        help="repeat fast calls (up to 20 timings) until they total this (1 s)")
    parser.add_argument("--quick", action="store_true", help="8 images, 1 repeat, no --min-s")
    parser.add_argument("--record", action="store_true",
                        help=f"also write the report to data/results/{RECORD} (the committed "
                             f"record the closing notes and notebook 06 cite)")
    args = parser.parse_args(argv)
    quick = args.quick or config.QUICK
    n = args.n if args.n is not None else (8 if quick else 50)
    repeats = args.repeats if args.repeats is not None else (1 if quick else 3)
    min_s = args.min_s if args.min_s is not None else (0.0 if quick else 1.0)
    start = time.perf_counter()
    warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")  # per call
    config.set_seed()
    test = data.load("cifar10", "test", n=n, verbose=False)
    x = test.images
    cnn = models.load_pretrained("cnn_cifar10")
    modules = [(name, id(m)) for name, m in cnn.named_modules()]
    peer, gb_peer = copy.deepcopy(cnn).eval(), copy.deepcopy(cnn).eval()
    frozen = copy.deepcopy(cnn).eval().requires_grad_(False)  # the course's conditions
    bounds = limits(frozen)
    bounds["cav"][0](x)  # the first full-size pass of a process is slow (allocations)
    report = {"machine": machine_info("cpu"), "threads": torch.get_num_threads(),
              "test_set": test.describe(), "n_images": len(x), "repeats": repeats, "min_s": min_s,
              "classes": K, "methods": {}}
    print("machine:", report["machine"], "| torch threads:", report["threads"])
    print(f"{report['test_set']} | best of {repeats}+ timings (>= {min_s:g} s) | ms per image, "
          f"all {K} classes")
    print(f"{'method':21s} {'course':>8s} {'captum':>9s} {'grad-cam':>9s} {'limit':>8s} "
          f"{'x captum':>9s} {'x grad-cam':>10s} {'/limit':>7s}")
    def timed(fn):
        return best_time(fn, x, repeats, min_s)

    checks = {}
    for method in METHODS:
        row, maps = {}, {}
        row["course"], maps["course"] = timed(lambda v, m=method: attribute(m, cnn, v))
        row["captum"], maps["captum"] = timed(captum_loop(peer, method))
        lib = gradcam_lib_loop(peer, gb_peer, method)
        row["gradcam_lib"] = None if lib is None else timed(lib)[0]
        fn, factor = bounds[method]
        row["limit"] = timed(fn)[0] * factor
        if method in ("guided_backprop", "gradcam"):
            checks[method] = agrees(maps["captum"].detach(), maps["course"])
        entry = {f"{way}_s_per_image": row[way] for way in WAYS}
        entry["captum_is_formula"] = method == "cam"
        entry["captum_over_course"] = row["captum"] / row["course"]
        entry["gradcam_lib_over_course"] = (None if row["gradcam_lib"] is None
                                            else row["gradcam_lib"] / row["course"])
        entry["course_over_limit"] = row["course"] / row["limit"]
        report["methods"][method] = entry
        ms = {way: "-" if row[way] is None else f"{1e3 * row[way]:.2f}" for way in WAYS}
        lib_x = entry["gradcam_lib_over_course"]
        print(f"{method:21s} {ms['course']:>8s} {ms['captum'] + '*' * (method == 'cam'):>9s} "
              f"{ms['gradcam_lib']:>9s} {ms['limit']:>8s} {entry['captum_over_course']:>9.1f} "
              f"{'-' if lib_x is None else f'{lib_x:.1f}':>10s} "
              f"{entry['course_over_limit']:>7.2f}")
    print("* captum has no CAM: class_maps.cam_reference (the formula) looped over classes")
    relus = [{id(m) for m in net.modules() if isinstance(m, nn.ReLU)} for net in (cnn, gb_peer)]
    report["gradcam_lib_relus_after"] = len(relus[1])
    if GradCAM is not None:
        print(f"pytorch-grad-cam's GuidedBackpropReLUModel left its copy with {len(relus[1])} "
              f"shared ReLU module(s) instead of {len(relus[0])} (the course's cnn was not "
              f"passed to it)")
    else:
        print("pytorch-grad-cam is not installed (pip install grad-cam): its column is empty")
    report["captum_equals_course"] = checks
    print("captum loop == course maps:", ", ".join(f"{m} {ok}" for m, ok in checks.items()))
    assert all(checks.values()), f"captum and the course disagree: {checks}"
    assert [(name, id(m)) for name, m in cnn.named_modules()] == modules, "cnn was modified"
    report["total_s"] = time.perf_counter() - start
    print(f"total {report['total_s']:.0f} s")
    write_report(report, "peers", RECORD if args.record else None, quick)
    return report


if __name__ == "__main__":
    main()
