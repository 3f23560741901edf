"""Knowledge distillation: the loss, the teacher's mirror-averaged log-probabilities, and fit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xai_helpers import checkpoints, data, train
from xai_helpers.models import Recipe
from xai_helpers.training import distill


def test_weight_zero_is_plain_cross_entropy():
    torch.manual_seed(0)
    scores, labels, teacher = torch.randn(8, 5), torch.randint(0, 5, (8,)), torch.randn(8, 5)
    loss = distill.distill_loss(scores, labels, teacher, weight=0.0, temperature=4.0)
    assert torch.allclose(loss, F.cross_entropy(scores, labels))


def test_soft_term_is_zero_when_the_student_matches_the_teacher():
    torch.manual_seed(1)
    teacher, labels = torch.randn(8, 5), torch.randint(0, 5, (8,))
    # a constant per row does not change a softmax: the KL term must vanish
    loss = distill.distill_loss(teacher + 3.0, labels, teacher, weight=1.0, temperature=4.0)
    assert abs(loss.item()) < 1e-5
    other = distill.distill_loss(torch.randn(8, 5), labels, teacher, weight=1.0, temperature=4.0)
    assert other.item() > 1e-3


def test_mixed_loss_by_hand():
    torch.manual_seed(2)
    s, y, t = torch.randn(6, 4), torch.randint(0, 4, (6,)), torch.randn(6, 4)
    T, a = 3.0, 0.25
    p_t = (t / T).softmax(1)
    kl = (p_t * (p_t.log() - (s / T).log_softmax(1))).sum(1).mean()
    want = (1 - a) * F.cross_entropy(s, y) + a * T * T * kl
    got = distill.distill_loss(s, y, t, weight=a, temperature=T)
    assert torch.allclose(got, want, atol=1e-6)


def test_teacher_is_the_mirror_averaged_checkpoint():
    images = data.load("cifar10", "test", n=20).images
    model = checkpoints.load_pretrained("cnn_cifar10").eval()
    with torch.no_grad():
        want = (model(images).log_softmax(1) + model(images.flip(3)).log_softmax(1)) / 2
    got = distill.teacher_log_probs(["cnn_cifar10"], images)
    assert torch.allclose(got, want, atol=1e-4)
    with pytest.raises(ValueError, match="at least one"):
        distill.teacher_log_probs([], images)


def test_fit_checks_the_teacher_shape(tiny_cnn, blobs):
    recipe = Recipe(epochs=1, batch_size=50, distill_weight=0.5)
    with pytest.raises(ValueError, match="teacher must be 2 x 300 x K"):
        train.fit(tiny_cnn, blobs, recipe, teacher=torch.zeros(300, 3), device="cpu")


def test_distilling_a_perfect_teacher_learns(tiny_cnn, blobs):
    teacher = 5.0 * F.one_hot(blobs.labels, 3).float()
    recipe = Recipe(epochs=3, batch_size=10, lr=2e-2, seed=1, distill_weight=0.9,
                    jpeg_p=0.5)
    history = train.fit(tiny_cnn, blobs, recipe, validation=blobs, device="cpu", quiet=True,
                        teacher=torch.stack([teacher, teacher]))
    assert history.validation_accuracy[-1] >= 0.95


@pytest.mark.parametrize("clean", [True, False])
def test_clean_teacher_distills_the_exact_images_answer(tiny_cnn, blobs, clean):
    # the teacher is right on the exact images and wrong (the next class) on the JPEG copies;
    # every training view is a JPEG copy, and the loss is the distillation term alone
    right = 8.0 * F.one_hot(blobs.labels, 3).float()
    wrong = 8.0 * F.one_hot((blobs.labels + 1) % 3, 3).float()
    recipe = Recipe(epochs=3, batch_size=10, lr=2e-2, seed=1, distill_weight=1.0, jpeg_p=1.0,
                    clean_teacher=clean)
    history = train.fit(tiny_cnn, blobs, recipe, validation=blobs, device="cpu", quiet=True,
                        teacher=torch.stack([right, wrong]))
    if clean:
        assert history.validation_accuracy[-1] >= 0.95
    else:
        assert history.validation_accuracy[-1] <= 0.05


def test_a_mirror_averaging_teacher_runs_once(monkeypatch):
    images = data.load("cifar10", "test", n=8).images
    model = checkpoints.load_pretrained("gcm_cifar10").eval()
    model.mirror = True  # a teacher that averages its own views is not averaged again
    with torch.no_grad():
        want = model(images).log_softmax(1)
    monkeypatch.setattr(checkpoints, "load_pretrained", lambda name, *a, **k: model)
    assert torch.allclose(distill.teacher_log_probs(["gcm_cifar10"], images), want, atol=1e-4)
