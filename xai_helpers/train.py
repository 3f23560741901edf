"""Train, load and score the series' models: the notebooks' entry to the machinery of
:mod:`xai_helpers.training` (the loop, augmentation, distillation, weight averaging).

    python -m xai_helpers.train lenet_mnist                   # full data -> build/checkpoints/
    python -m xai_helpers.train lenet_mnist --validation 5000 # tune: hold out 5,000 images
    python -m xai_helpers.train lenet_mnist --quick           # samples -> build/checkpoints/
    python -m xai_helpers.train lenet_mnist --replace-committed   # -> data/checkpoints/

``load_or_train(name)`` gives a notebook its committed model (or trains it, with
``retrain=True``); ``predict`` and ``evaluate`` score a model on an image set
(:mod:`xai_helpers.scoring`). See :mod:`xai_helpers.training.loop` for how a run works.
"""

from __future__ import annotations

from .training.loop import (
    History,
    evaluate,
    fit,
    jpeg_report,
    load_or_train,
    machine_info,
    main,
    measure_test,
    predict,
    teacher_for,
    train_registered,
    wilson_interval,
    write_report,
)

__all__ = ["History", "fit", "evaluate", "predict", "train_registered", "measure_test",
           "load_or_train", "teacher_for", "machine_info", "wilson_interval", "jpeg_report",
           "write_report", "main"]

if __name__ == "__main__":
    main()
