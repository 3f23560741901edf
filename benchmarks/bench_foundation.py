"""Foundation benchmark: dataset loading time per source and inference speed per checkpoint.

    make bench      (or: python benchmarks/bench_foundation.py)

Prints the machine, then for each dataset the seconds to load its test split from the source
that `xai_helpers.data.load` picks, and for each committed checkpoint the images per second of
batched inference (batch 500) against a per-image loop (the baseline), measured in the same run.
Results also go to build/bench/foundation.json.
"""

from __future__ import annotations

import time

import torch

from xai_helpers import data, models
from xai_helpers.train import machine_info, predict, write_report


def _seconds(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        tick = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - tick)
    return best


def main() -> dict:
    torch.set_num_threads(torch.get_num_threads())
    report = {"machine": machine_info("cpu"), "loading": {}, "inference": {}}
    print("machine:", report["machine"])
    for name in data.DATASETS:
        test = data.try_load(name, "test", verbose=False)
        if test is None:
            continue
        s = _seconds(lambda name=name: data.load(name, "test", verbose=False), repeat=2)
        report["loading"][name] = {"source": test.source, "images": len(test), "seconds": s}
        print(f"load {name:<14}{len(test):>7,} images in {s:6.2f} s  ({test.source})")
    for row in models.pretrained_table():
        model = models.load_pretrained(row["model"])
        test = data.load(row["dataset"], "test", n=2_000, verbose=False)
        batched = _seconds(lambda m=model, t=test: predict(m, t.images, device="cpu"))
        few = test.images[:200]
        with torch.no_grad():
            looped = _seconds(lambda m=model, f=few: [m(x[None]) for x in f], repeat=2)
        rate_batched, rate_loop = len(test) / batched, len(few) / looped
        report["inference"][row["model"]] = {"images_per_s_batched": rate_batched,
                                             "images_per_s_per_image_loop": rate_loop,
                                             "speedup": rate_batched / rate_loop}
        print(f"infer {row['model']:<14}{rate_batched:>9,.0f} img/s batched, "
              f"{rate_loop:>7,.0f} img/s one by one: x{rate_batched / rate_loop:.1f}")
    write_report(report, "foundation")
    return report


if __name__ == "__main__":
    main()
