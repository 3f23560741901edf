"""Stochastic weight averaging: the averaged weights are the mean of the epochs' ends, BN
statistics are re-estimated, a run resumes exactly, and fine-tuning starts from a checkpoint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_helpers import config, models, train
from xai_helpers.models import Recipe
from xai_helpers.training import loop, swa

RECIPE = Recipe(epochs=3, batch_size=10, lr=2e-2, schedule="none", seed=1, swa=True)


def _model() -> nn.Sequential:
    config.set_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(2 * 8 * 8, 3))


def test_fit_with_swa_ends_at_the_mean_of_the_epoch_end_weights(blobs, tmp_path, monkeypatch):
    snapshots, save = [], loop._save_state

    def save_and_keep(path, model, *args):
        snapshots.append({n: p.detach().clone() for n, p in model.named_parameters()})
        save(path, model, *args)

    monkeypatch.setattr(loop, "_save_state", save_and_keep)
    model = _model()
    history = train.fit(model, blobs, RECIPE, device="cpu", run_dir=tmp_path)
    assert len(snapshots) == 3 and history.epoch == [1, 2, 3]
    for name, param in model.named_parameters():
        mean = torch.stack([s[name] for s in snapshots]).mean(0)
        torch.testing.assert_close(param.detach(), mean, rtol=1e-5, atol=1e-6)
    assert not torch.equal(snapshots[0]["0.weight"], snapshots[-1]["0.weight"])
    assert train.evaluate(model, blobs, device="cpu") >= 0.95  # BN fits the averaged weights


def test_finish_re_estimates_batch_norm_on_the_given_batches():
    model = nn.Sequential(nn.BatchNorm2d(2))
    average = swa.averaged(model)
    average.update_parameters(model)
    x = torch.randn(64, 2, 4, 4) * torch.tensor([1.0, 3.0]).view(1, 2, 1, 1) + 5.0
    swa.finish(model, average, [x])
    bn = model[0]
    torch.testing.assert_close(bn.running_mean, x.mean((0, 2, 3)))
    torch.testing.assert_close(bn.running_var, x.transpose(0, 1).reshape(2, -1).var(1))


def test_finish_without_any_averaged_epoch_says_so():
    model = _model()
    with pytest.raises(ValueError, match="no weights were averaged"):
        swa.finish(model, swa.averaged(model), [])


def test_resumed_swa_run_equals_uninterrupted_run(blobs, tmp_path, monkeypatch):
    straight = _model()
    train.fit(straight, blobs, RECIPE, device="cpu")
    save = loop._save_state

    def save_then_die(*args):
        save(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train.fit(_model(), blobs, RECIPE, device="cpu", run_dir=tmp_path)
    monkeypatch.setattr(loop, "_save_state", save)
    resumed = _model()
    train.fit(resumed, blobs, RECIPE, device="cpu", run_dir=tmp_path)
    for (_, p), (_, q) in zip(straight.state_dict().items(), resumed.state_dict().items(),
                              strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("name", [n for n, s in models.REGISTRY.items() if s.recipe.init])
def test_fine_tuned_models_start_from_a_registered_checkpoint_of_the_same_build(name):
    init = models.REGISTRY[name].recipe.init
    assert init in models.REGISTRY and init != name
    ours, theirs = models.build(name).state_dict(), models.build(init).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_a_recipe_with_average_and_no_epochs_is_the_mean_of_those_checkpoints(blobs,
                                                                              monkeypatch):
    # cyclic SWA: the ends of earlier cycles, here two differently seeded trained models
    ends = {}
    for name, seed in (("cycle_a", 1), ("cycle_b", 2)):
        end = _model()
        train.fit(end, blobs, Recipe(epochs=2, batch_size=10, lr=2e-2, seed=seed), device="cpu")
        ends[name] = end.eval()
    monkeypatch.setattr(models, "load_pretrained", lambda name, device="cpu": ends[name])
    model = _model()
    recipe = Recipe(epochs=0, batch_size=10, schedule="cosine", average=tuple(ends))
    history = train.fit(model, blobs, recipe, device="cpu")
    assert history.epoch == [] and history.seconds > 0  # no training, one pass for BN
    for name, param in model.named_parameters():
        mean = (dict(ends["cycle_a"].named_parameters())[name]
                + dict(ends["cycle_b"].named_parameters())[name]) / 2
        torch.testing.assert_close(param.detach(), mean.detach(), rtol=1e-5, atol=1e-6)
    bn = model[1]  # BN statistics re-estimated for the mean weights, not either end's
    assert not torch.equal(bn.running_mean, ends["cycle_a"][1].running_mean)
    assert train.evaluate(model, blobs, device="cpu") >= 0.9
