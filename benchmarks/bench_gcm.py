"""GCM against the plain CNN (paper 2, Table 7, ours): parameters, test accuracy, inference time.

    make bench      (or: python benchmarks/bench_gcm.py)

Same run, same machine: for each committed CIFAR-10 checkpoint (gcm_cifar10, gcm_cifar10_clip,
gcm_cifar10_v1, cnn_cifar10) the parameter count, the test accuracy on the test set
`data.load` finds (the full 10,000 images when XAI_DATA_DIR has cifar10.npz; otherwise the
committed 1,000-image sample, said in the output), and the inference time per image, batched
(100) and one image at a time, best of 3 passes; then GCM's overhead as the ratio of its time
to the CNN's for ``gcm_cifar10`` (one pass, Eq. 1 once) and for notebook 03's aside, its
weights with ten views averaged (the image and its mirror image, each also moved 2 px four
ways: ``GCM(mirror=True, shifts=2)``). The training throughput is the one recorded in each
checkpoint's JSON (measured when it was trained). Last, the ten-view GCM at small batch sizes
with its views in one batch and one at a time (``gcm.VIEW_BATCH``). Results go to
build/bench/gcm.json.
"""

from __future__ import annotations

import torch

from xai_helpers import config, data, gcm, models
from xai_helpers.gcm_analysis import seconds_per_image
from xai_helpers.train import evaluate, machine_info, write_report

NAMES = ("gcm_cifar10", "gcm_cifar10_clip", "gcm_cifar10_v1", "cnn_cifar10", "ten views")


def ten_views() -> gcm.GCM:
    """gcm_cifar10's weights with ten views averaged at inference (notebook 03's aside)."""
    model = gcm.GCM(10, 3, mirror=True, shifts=2)
    model.load_state_dict(models.load_pretrained("gcm_cifar10").state_dict())
    return model.eval()


def main() -> dict:
    test = data.load("cifar10", "test", verbose=False)
    timing = test.images[:config.pick(200, 1_000)]
    report = {"machine": machine_info("cpu"), "threads": torch.get_num_threads(),
              "test_set": test.describe(), "models": {}}
    print("machine:", report["machine"], "| torch threads:", report["threads"])
    print("test set:", report["test_set"])
    for name in NAMES:
        try:
            model = ten_views() if name == "ten views" else models.load_pretrained(name)
        except models.CheckpointError as err:
            print(f"{name}: skipped ({err})")
            continue
        meta = models.read_meta("gcm_cifar10" if name == "ten views" else name)
        row = {"parameters": models.count_parameters(model),
               "views": len(model.views()) if hasattr(model, "views") else 1,
               "test_accuracy": evaluate(model, test, device="cpu"),
               "ms_per_image_batched": 1e3 * seconds_per_image(model, timing, batch_size=100),
               "ms_per_image_single": 1e3 * seconds_per_image(model, timing[:200],
                                                              batch_size=1),
               "train_images_per_s": meta.get("train_images_per_s"),
               "training_time_s": meta.get("training_time_s"),
               "trained_on": meta.get("machine", {}).get("device")}
        report["models"][name] = row
        print(f"{name:18s} {row['parameters']:>8,d} params  test {100 * row['test_accuracy']:.2f}%"
              f"  {row['ms_per_image_batched']:.3f} ms/image batched, "
              f"{row['ms_per_image_single']:.2f} ms/image one by one; trained at "
              f"{row['train_images_per_s']} images/s in {row['training_time_s']} s")
    rows = report["models"]
    for gcm_name, key in (("gcm_cifar10", "gcm"), ("ten views", "gcm_ten_views")):
        if gcm_name not in rows or "cnn_cifar10" not in rows:
            continue
        for kind in ("batched", "single"):
            ratio = (rows[gcm_name][f"ms_per_image_{kind}"]
                     / rows["cnn_cifar10"][f"ms_per_image_{kind}"])
            report[f"{key}_over_cnn_time_{kind}"] = ratio
            print(f"{gcm_name} ({rows[gcm_name]['views']} view(s)) inference overhead ({kind}): "
                  f"x{ratio:.2f} the CNN's time per image")
    if "ten views" in rows:
        report["view_batch"] = view_batch_table(ten_views(), timing)
    write_report(report, "gcm")
    return report


def view_batch_table(model: torch.nn.Module, images: torch.Tensor,
                     sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 48, 64, 100)) -> dict:
    """ms per image of a multi-view GCM at small batch sizes, all views in one batch against
    one view at a time (how gcm.VIEW_BATCH, the switch between the two, was chosen)."""
    table, default = {}, gcm.VIEW_BATCH
    n_views = len(model.views())
    print(f"views in one batch vs one at a time ({n_views} views; VIEW_BATCH = {default} "
          f"images x views):")
    try:
        for size in sizes:
            row = {}
            for mode, limit in (("one_batch", 10**9), ("one_at_a_time", 0)):
                gcm.VIEW_BATCH = limit
                row[mode] = 1e3 * seconds_per_image(model, images[:max(size, 64 // size * size)],
                                                    batch_size=size)
            table[size] = row
            print(f"  batch {size:>3}: {row['one_batch']:.2f} vs {row['one_at_a_time']:.2f} "
                  f"ms/image")
    finally:
        gcm.VIEW_BATCH = default
    return table


if __name__ == "__main__":
    main()
