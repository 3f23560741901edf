"""The one training loop of the series: seeded, resumable, CPU or CUDA, with a progress bar.

    python -m xai_helpers.train lenet_mnist                   # full data -> build/checkpoints/
    python -m xai_helpers.train lenet_mnist --validation 5000 # tune: hold out 5,000 images
    python -m xai_helpers.train lenet_mnist --quick           # samples -> build/checkpoints/
    python -m xai_helpers.train lenet_mnist --replace-committed   # -> data/checkpoints/

A run never measures the test set while it trains: with ``--validation N`` it records the
accuracy on the last ``N`` training images after every epoch (how recipes are chosen); a final
run trains on the whole training split and measures the test set once, at the end. A model
whose recipe starts from another model's weights (``Recipe.init``) is trained after its
parents (:func:`models.chain`); a parent without a committed checkpoint is rebuilt first.

Training state is saved after every epoch in ``build/runs/NAME/state.pt``; running the same
command again resumes from it (same result as an uninterrupted run: the shuffling and the
augmentation of epoch ``e`` depend only on the seed and ``e``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .. import config, data, models
from ..registry import Recipe
from ..scoring import evaluate, jpeg_report, measure_test, predict, wilson_interval
from . import augment, distill, swa

__all__ = ["History", "fit", "evaluate", "predict", "train_registered", "measure_test",
           "load_or_train",
           "machine_info", "wilson_interval", "jpeg_report", "write_report"]


@dataclass
class History:
    """Per-epoch record of a training run (accuracies are fractions in [0, 1])."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    validation_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    params = model.parameters()
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=0.9, nesterov=True,
                               weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd_plain":  # no momentum (paper 4's "SGD, learning rate 0.1")
        return torch.optim.SGD(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}: use adam, adamw, sgd or "
                     f"sgd_plain")


def _scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, total_steps: int):
    if recipe.schedule == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps)
                                                        / max(total_steps, 1))))
    raise ValueError(f"unknown schedule {recipe.schedule!r}: use none or cosine")


def fit(model: nn.Module, train: data.ImageData, recipe: Recipe, *,
        validation: data.ImageData | None = None, epochs: int | None = None,
        device: str | torch.device | None = None, run_dir: Path | None = None,
        quiet: bool | None = None, compile: bool = False, bf16: bool = False,
        teacher: torch.Tensor | None = None) -> History:
    """Train ``model`` in place following ``recipe``; return the per-epoch history.

    ``validation``: held-out *training* images measured after every epoch (never the test
    set: choosing on it would make the test figure optimistic). ``epochs`` overrides
    ``recipe.epochs``. With ``run_dir``, the state after every epoch is written to
    ``run_dir/state.pt`` and a later call with the same ``run_dir`` resumes from it.
    ``compile=True`` trains through ``torch.compile`` in channels-last memory layout (GCM on a
    2-core CPU: 886 instead of 570 images/s; needs a C++ compiler); the weights and the
    saved state are the same module's either way. ``bf16=True`` runs the forward pass under
    bfloat16 autocast (weights, optimiser and evaluation stay float32; GCM on a 2-core CPU with
    AVX-512 BF16: 1,016 instead of 607 images/s per training step). ``teacher``: 2 x N x K
    teacher log-probabilities for the exact and the JPEG copy of each training image
    (:func:`distill.teacher_log_probs`), distilled with ``recipe.distill_weight``; with
    ``recipe.clean_teacher`` the JPEG copy gets the exact image's teacher (the student learns to
    give the clean image's answer from the degraded one).
    """
    device = torch.device(device) if device is not None else config.device()
    quiet = config.QUIET if quiet is None else quiet
    epochs = recipe.epochs if epochs is None else epochs
    steps_per_epoch = math.ceil(len(train) / recipe.batch_size)
    total_steps = epochs * steps_per_epoch
    if recipe.max_steps is not None:
        total_steps = min(total_steps, recipe.max_steps)
        epochs = math.ceil(total_steps / steps_per_epoch)
    model.to(device)
    config.set_seed(recipe.seed)
    optimizer = _optimizer(model, recipe)
    scheduler = _scheduler(optimizer, recipe, total_steps)
    history, start = History(), 0
    averaged = swa.averaged(model) if recipe.swa or recipe.average else None
    for name in recipe.average:  # cyclic SWA: the ends of earlier cycles (swa.py)
        averaged.update_parameters(models.load_pretrained(name, device))

    state_file = Path(run_dir) / "state.pt" if run_dir is not None else None
    if state_file is not None and state_file.exists():
        try:  # plain tensors and data only: a planted pickle payload is refused, not run
            state = torch.load(state_file, map_location=device, weights_only=True)
        except Exception as err:
            raise RuntimeError(f"{state_file} cannot be loaded safely as a training state "
                               f"({type(err).__name__}: {' '.join(str(err).split())[:200]}); "
                               f"delete {state_file.parent} to start afresh") from None
        if state["recipe"] != asdict(recipe) or state["n_train"] != len(train):
            raise RuntimeError(f"{state_file} was written by another recipe or dataset; "
                               f"delete {state_file.parent} to start afresh")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        state["history"].pop("test_accuracy", None)  # written by runs before validation splits
        history, start = History(**state["history"]), state["epoch"]
        if averaged is not None:
            averaged.load_state_dict(state["averaged"])
        if not quiet:
            print(f"resuming from {state_file} after epoch {start}")

    torch.set_flush_denormal(True)  # tiny weights decayed towards 0 must not slow the CPU
    step_model = model
    if compile:
        model.to(memory_format=torch.channels_last)
        step_model = torch.compile(model)
    images, labels = train.images.to(device), train.labels.to(device)
    jpeg = data.jpeg_recompress(train.images).to(device) if recipe.jpeg_p > 0 else None

    def view(index, generator):  # the training batch as the model sees it
        return augment.training_view(images, jpeg, index, recipe.augment, recipe.jpeg_p,
                                     generator)

    if teacher is not None:
        if teacher.ndim != 3 or teacher.shape[:2] != (2, len(train)):
            raise ValueError(f"teacher must be 2 x {len(train)} x K (exact, JPEG), got "
                             f"{tuple(teacher.shape)}")
        teacher = teacher.to(device)
    for epoch in range(start, epochs):
        tick = time.perf_counter()
        model.train()
        generator = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch)
        order = torch.randperm(len(train), generator=generator).to(device)
        total_loss, correct = 0.0, 0
        steps = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{epochs}", disable=quiet, leave=False)
        seen = 0
        for step in bar:
            index = order[step * recipe.batch_size:(step + 1) * recipe.batch_size]
            x, use = view(index, generator)
            if compile:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                scores = step_model(x)
            soft = None if teacher is None else teacher[0][index]
            if soft is not None and jpeg is not None and not recipe.clean_teacher:
                soft = torch.where(use[:, None], teacher[1][index], soft)
            loss = distill.distill_loss(scores.float(), labels[index], soft,
                                        weight=recipe.distill_weight,
                                        temperature=recipe.temperature,
                                        label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(index)
            total_loss += loss.item() * len(index)
            correct += (scores.argmax(1) == labels[index]).sum().item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if averaged is not None:
            averaged.update_parameters(model)
        history.epoch.append(epoch + 1)
        history.train_loss.append(total_loss / seen)
        history.train_accuracy.append(correct / seen)
        history.validation_accuracy.append(
            evaluate(model, validation, device=device) if validation else float("nan"))
        history.seconds += time.perf_counter() - tick
        if not quiet:
            print(f"epoch {epoch + 1}/{epochs}: loss {history.train_loss[-1]:.4f}, "
                  f"train {100 * history.train_accuracy[-1]:.2f}%, "
                  f"validation {100 * history.validation_accuracy[-1]:.2f}% "
                  f"({history.seconds:.0f} s)")
        if state_file is not None:
            _save_state(state_file, model, optimizer, scheduler, recipe, len(train),
                        epoch + 1, history, averaged)
    if averaged is not None:  # one pass over the training views re-estimates BN's statistics
        tick = time.perf_counter()
        generator = torch.Generator().manual_seed(recipe.seed * 100_003 + epochs)
        batches = torch.arange(len(train)).to(device).split(recipe.batch_size)
        swa.finish(model, averaged, (view(index, generator)[0] for index in batches))
        history.seconds += time.perf_counter() - tick
    model.eval()
    return history


def _save_state(path: Path, model, optimizer, scheduler, recipe, n_train, epoch, history,
                averaged=None):
    """Atomic write (temporary file + rename), so an interrupted save never corrupts a run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
                "recipe": asdict(recipe), "n_train": n_train, "epoch": epoch,
                "history": asdict(history),
                "averaged": None if averaged is None else averaged.state_dict()}, tmp)
    os.replace(tmp, path)


def machine_info(device: str | torch.device | None = None) -> dict:
    """Where a run happened, for the checkpoint JSON and benchmark reports."""
    device = torch.device(device) if device is not None else config.device()
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu_count": os.cpu_count(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def write_report(report: dict, name: str, record: str | None = None,
                 quick: bool = False) -> Path:
    """Write a benchmark report to ``build/bench/NAME.json`` and say where (``make bench``);
    with ``record`` (a file name), also copy it to ``data/results/RECORD``, the committed
    record (a benchmark's ``--record``), which keeps full runs only: ``quick`` refuses."""
    if record and quick:
        raise SystemExit("--record keeps full runs only (not --quick / XAI_QUICK=1)")
    out = config.BUILD_DIR / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {out}")
    if record:
        shutil.copyfile(out, config.RESULTS_DIR / record)
        print(f"-> {config.show_path(config.RESULTS_DIR / record)}")
    return out


def train_registered(name: str, *, quick: bool = False, device: str | None = None,
                     out_dir: Path | None = None, epochs: int | None = None,
                     validation: int = 0, compile: bool = False, bf16: bool = False,
                     replace_committed: bool = False) -> dict:
    """Train registered model ``name`` on its dataset, write checkpoint + JSON, return the JSON.

    Full mode trains on the whole training split and measures the whole test split once, at the
    end (both must come from a full source: ``$XAI_DATA_DIR`` or the torchvision download).
    Quick mode uses the committed samples and at most 3 epochs. ``validation=N`` holds out the
    last ``N`` training images, records the accuracy on them after every epoch and at the end,
    and never touches the test set (how a recipe is tuned; paper 2: 45,000 / 5,000).
    Checkpoints go to ``build/checkpoints/`` (``validation/`` below it for held-out runs);
    ``replace_committed=True`` writes a final full-mode run into ``data/checkpoints/`` instead.
    A parent in the recipe's ``init`` chain with no checkpoint in the store or in the output
    folder is trained first, into the output folder.
    """
    spec = models.spec(name)
    if spec.made_by:
        raise ValueError(f"{name} is not trained from scratch: it is made by `{spec.made_by}` "
                         f"(plain training would overwrite it with another model)")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if replace_committed and (quick or validation):
        raise ValueError("only a final full-mode run may replace a committed checkpoint "
                         "(not --quick, not --validation)")
    recipe = spec.recipe
    epochs = epochs or (min(3, recipe.epochs) if quick else recipe.epochs)
    train = data.load(spec.dataset, "train", n=2_000 if quick else None)
    if not quick and not train.full:
        raise data.DataUnavailableError(
            f"full training of {name} needs the whole {spec.dataset} training split, but got "
            f"{len(train):,} images (from {train.source}). Set XAI_DATA_DIR to a folder with "
            f"{spec.dataset}.npz, or use --quick")
    held_out = None
    tag = name + ("-quick" if quick else "")
    if validation:
        if not 0 < validation < len(train):
            raise ValueError(f"validation must be between 1 and {len(train) - 1} images")
        cut = len(train) - validation
        train, held_out = train.subset(slice(0, cut)), train.subset(slice(cut, None))
        tag += f"-val{validation}"
    out_dir = Path(out_dir) if out_dir else (
        config.CHECKPOINT_DIR if replace_committed
        else config.BUILD_DIR / "checkpoints" / ("validation" if validation else ""))
    device = device or config.device()
    config.set_seed(recipe.seed)  # the initial weights depend on the seed only
    model = spec.build()
    if recipe.init:  # fine-tuning: the weights of the parent checkpoint (same build)
        model.load_state_dict(_parent(recipe.init, out_dir, quick=quick, device=device,
                                      compile=compile, bf16=bf16).state_dict())
    history = fit(model, train, recipe, validation=held_out, epochs=epochs, device=device,
                  run_dir=config.BUILD_DIR / "runs" / tag, compile=compile, bf16=bf16,
                  teacher=teacher_for(recipe, train))
    model = model.to(memory_format=torch.contiguous_format)
    meta = {
        "dataset": spec.dataset, "description": spec.description, "paper": spec.paper,
        "quick": quick, "validation": validation, "train_size": len(train),
        "train_source": _short(train.source), **models.recipe_dict(recipe), "epochs": epochs,
        "iterations": min(epochs * math.ceil(len(train) / recipe.batch_size),
                          recipe.max_steps or math.inf),
        "history_train_accuracy": [round(a, 6) for a in history.train_accuracy],
    }
    if held_out is not None:
        meta.update({"validation_size": len(held_out),
                     "validation_accuracy": round(evaluate(model, held_out, device=device), 6),
                     "history_validation_accuracy": [round(a, 6)
                                                     for a in history.validation_accuracy]})
    else:  # the test set, measured once, on the finished model
        meta.update(measure_test(model, spec.dataset, quick=quick, device=device))
    meta.update({
        "training_time_s": round(history.seconds, 1), "compiled": compile,
        "precision": "bfloat16 autocast" if bf16 else "float32",
        "train_images_per_s": round(epochs * len(train) / max(history.seconds, 1e-9), 1),
        "machine": machine_info(device),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    })
    pt, js = models.save_checkpoint(model.cpu(), name, meta, out_dir)
    where = (f"validation accuracy {100 * meta['validation_accuracy']:.2f}% on "
             f"{len(held_out):,} held-out training images" if held_out is not None else
             f"test accuracy {100 * meta['test_accuracy']:.2f}% on {meta['test_size']:,} images")
    print(f"{name}: {where} -> {config.show_path(pt)} and {js.name}")
    return meta


def _parent(name: str, out_dir: Path, **options) -> nn.Module:
    """The weights a recipe starts from: the committed checkpoint, else one in ``out_dir``,
    else trained now into ``out_dir`` (its own parents first)."""
    for directory in (config.CHECKPOINT_DIR, out_dir):
        if models.checkpoint_paths(name, directory)[0].exists():
            return models.load_pretrained(name, directory=directory)
    print(f"{name} (a parent) has no checkpoint: training it first, into "
          f"{config.show_path(out_dir)}")
    train_registered(name, out_dir=out_dir, **options)
    return models.load_pretrained(name, directory=out_dir)


def teacher_for(recipe: Recipe, train: data.ImageData) -> torch.Tensor | None:
    """2 x N x K teacher log-probabilities (exact, JPEG copy) when ``recipe.teachers``
    (cached in ``build/cache``; with ``recipe.clean_teacher`` both are the exact image's)."""
    if not recipe.teachers:
        return None
    import hashlib

    from .. import checkpoints

    key = hashlib.sha256(json.dumps([checkpoints.read_meta(n)["sha256"] for n in recipe.teachers])
                         .encode())
    key.update(train.images.mul(255).round().to(torch.uint8).numpy().tobytes())
    if recipe.clean_teacher:  # the JPEG copies' teacher is never used: not computed
        key.update(b"clean")
    key = key.hexdigest()[:16]
    cache = config.BUILD_DIR / "cache" / f"teacher-{key}.pt"
    if cache.exists():
        return torch.load(cache, weights_only=True)
    exact = distill.teacher_log_probs(recipe.teachers, train.images)
    teacher = torch.stack([exact, exact if recipe.clean_teacher else distill.teacher_log_probs(
        recipe.teachers, data.jpeg_recompress(train.images))])
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(teacher, cache)
    return teacher


def load_or_train(name: str, retrain: bool = False, *,
                  device: str | torch.device | None = None) -> nn.Module:
    """The model of the notebooks: the committed checkpoint, or (``retrain=True``) a model
    trained here, in quick mode on the samples, in full mode on the full data (needs
    ``$XAI_DATA_DIR`` or the download). Retrained checkpoints go to ``build/checkpoints/``,
    never over the committed ones."""
    if not retrain:
        return models.load_pretrained(name, device or "cpu")
    out_dir = config.BUILD_DIR / "checkpoints"
    train_registered(name, quick=config.QUICK, device=device, out_dir=out_dir)
    return models.load_pretrained(name, device or "cpu", directory=out_dir)


def _short(source: str) -> str:
    """A source without the machine's folders: 'data dir /a/b/mnist.npz' -> 'data dir mnist.npz'."""
    return " ".join(Path(w).name if "/" in w else w for w in source.split())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(models.REGISTRY))
    parser.add_argument("--quick", action="store_true", help="samples, <= 3 epochs, into build/")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe")
    parser.add_argument("--validation", type=int, default=0, metavar="N",
                        help="hold out the last N training images and measure on them")
    parser.add_argument("--compile", action="store_true",
                        help="train through torch.compile (faster; needs a C++ compiler)")
    parser.add_argument("--replace-committed", action="store_true",
                        help="write a final full-mode run over data/checkpoints/NAME.* (default: "
                             "build/checkpoints/)")
    parser.add_argument("--record", action="store_true",
                        help="with --validation: write the validation record into "
                             "data/results/validation/ (committed; default build/results/)")
    parser.add_argument("--bf16", action="store_true",
                        help="bfloat16 autocast in training (faster on CPUs with AVX-512 BF16 "
                             "or AMX, and on GPUs)")
    args = parser.parse_args(argv)
    meta = train_registered(args.name, quick=args.quick, device=args.device,
                            epochs=args.epochs, validation=args.validation,
                            compile=args.compile, bf16=args.bf16,
                            replace_committed=args.replace_committed)
    if args.validation and not args.quick:
        root = config.RESULTS_DIR if args.record else config.BUILD_DIR / "results"
        path = root / "validation" / f"{args.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {k: v for k, v in meta.items() if k != "sha256"}
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"validation record -> {path}")


if __name__ == "__main__":
    main()
