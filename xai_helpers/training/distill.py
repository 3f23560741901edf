"""Knowledge distillation (Hinton, Vinyals and Dean 2015) from an ensemble of checkpoints.

A small model trained on the labels alone under-fits CIFAR-10 (GCM at 162,000 parameters ends
near 95% training accuracy). The averaged predictions of a few trained models ("the teacher")
say more per image than its label: how much it also looks like each other class. The student
is then trained on

    loss = (1 - a) * CE(scores, label) + a * T^2 * KL(softmax(teacher / T) || softmax(scores / T))

(Hinton et al., Eq. 2 with the usual T^2 factor). The teacher's log-probabilities are computed
once per training image (exact and JPEG copy, each averaged over the image and its mirror
image), not per augmented crop: a crop shifted by up to 4 pixels keeps its teacher. With
``Recipe.clean_teacher`` a JPEG copy is distilled towards the teacher's prediction on the exact
image (privileged information: the teacher sees the clean pixels, the student the degraded ones).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import checkpoints
from ..scoring import predict

__all__ = ["teacher_log_probs", "distill_loss"]


def teacher_log_probs(names: tuple[str, ...] | list[str], images: torch.Tensor, *,
                      batch_size: int = 500) -> torch.Tensor:
    """Mean over the checkpoints ``names`` and over the image and its mirror image of the
    log-softmax of the scores: N x K, the teacher's "logits" (a constant per image is
    irrelevant to the softmax). A model that averages over the mirror image itself
    (``GCM(mirror=True)``: the same scores for both) is run once."""
    if not names:
        raise ValueError("teacher_log_probs needs at least one checkpoint name")
    total = 0.0
    for name in names:
        model = checkpoints.load_pretrained(name).eval()
        views = (images,) if getattr(model, "mirror", False) else (images, images.flip(3))
        for view in views:
            scores = predict(model, view, batch_size=batch_size)
            total = total + scores.float().log_softmax(1) * (2 / len(views))
    return total / (2 * len(names))


def distill_loss(scores: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, *,
                 weight: float, temperature: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """``(1 - weight) * CE + weight * T^2 * KL(teacher_T || student_T)`` (Hinton et al. 2015);
    plain cross-entropy without a teacher or with ``weight == 0``."""
    hard = F.cross_entropy(scores, labels, label_smoothing=label_smoothing)
    if teacher is None or weight == 0:
        return hard
    t = temperature
    soft = F.kl_div((scores / t).log_softmax(1), (teacher / t).log_softmax(1),
                    reduction="batchmean", log_target=True)
    return (1 - weight) * hard + weight * t * t * soft
