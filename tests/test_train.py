"""The shared training loop: it learns, is deterministic, and resumes exactly."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from xai_helpers import config, models, train
from xai_helpers.models import Recipe
from xai_helpers.training import augment, loop

RECIPE = Recipe(epochs=3, batch_size=10, lr=2e-2, schedule="cosine", seed=1)


def _fresh(tiny_cnn_factory):
    config.set_seed(RECIPE.seed)
    return tiny_cnn_factory()


@pytest.fixture
def make_model(tiny_cnn):
    import copy

    state = copy.deepcopy(tiny_cnn.state_dict())

    def factory():
        model = copy.deepcopy(tiny_cnn)
        model.load_state_dict(state)
        return model

    return factory


def test_fit_learns_a_separable_problem(make_model, blobs):
    model = make_model()
    history = train.fit(model, blobs, RECIPE, validation=blobs, device="cpu")
    assert history.epoch == [1, 2, 3]
    assert history.validation_accuracy[-1] >= 0.95
    assert history.train_loss[-1] < history.train_loss[0]
    assert train.evaluate(model, blobs, device="cpu") == pytest.approx(
        history.validation_accuracy[-1])


def test_bf16_autocast_learns_and_keeps_float32_weights(make_model, blobs):
    model = make_model()
    history = train.fit(model, blobs, RECIPE, validation=blobs, device="cpu", bf16=True)
    assert history.validation_accuracy[-1] >= 0.95
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert train.predict(model, blobs.images[:4], device="cpu").dtype == torch.float32


def test_same_seed_same_weights(make_model, blobs):
    a, b = make_model(), make_model()
    train.fit(a, blobs, RECIPE, device="cpu")
    train.fit(b, blobs, RECIPE, device="cpu")
    for (_, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q)


def test_resumed_run_equals_uninterrupted_run(make_model, blobs, tmp_path, monkeypatch):
    straight = make_model()
    train.fit(straight, blobs, RECIPE, device="cpu")
    save = loop._save_state

    def save_then_die(*args):
        save(*args)
        raise KeyboardInterrupt  # the session is cut off right after epoch 1 was saved

    monkeypatch.setattr(loop, "_save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train.fit(make_model(), blobs, RECIPE, device="cpu", run_dir=tmp_path)
    monkeypatch.setattr(loop, "_save_state", save)
    assert torch.load(tmp_path / "state.pt", weights_only=True)["epoch"] == 1
    resumed = make_model()  # a new process: fresh weights, state comes from the file
    history = train.fit(resumed, blobs, RECIPE, device="cpu", run_dir=tmp_path)
    assert history.epoch == [1, 2, 3]
    for (_, p), (_, q) in zip(straight.state_dict().items(), resumed.state_dict().items(),
                              strict=True):
        assert torch.equal(p, q)


def test_resume_refuses_another_recipe(make_model, blobs, tmp_path):
    train.fit(make_model(), blobs, RECIPE, epochs=1, device="cpu", run_dir=tmp_path)
    other = Recipe(epochs=3, batch_size=10, seed=1)
    with pytest.raises(RuntimeError, match="another recipe"):
        train.fit(make_model(), blobs, other, device="cpu", run_dir=tmp_path)


def test_augment_keeps_shape_and_moves_content():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 3, 32, 32)
    x[:, :, 10:20, 10:20] = 1.0
    for kind in ("shift", "crop_flip"):
        out = augment.augment(x, kind, g)
        assert out.shape == x.shape
        assert set(out.unique().tolist()) <= {0.0, 1.0}
        assert (out.sum((1, 2, 3)) == 300).all()  # a 10x10 square never leaves a 4-px shift
        assert not torch.equal(out, x)
    assert augment.augment(x, "none", g) is x
    with pytest.raises(ValueError, match="unknown augment 'mixup'"):
        augment.augment(x, "mixup", g)


def test_cutout_zeroes_one_clipped_16px_square_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(500, 3, 32, 32) + 0.5  # no pixel is 0 before Cutout
    out = augment.cutout(x, g)
    hole = out == 0
    assert (hole.all(1) == hole.any(1)).all()  # every channel of a pixel, or none
    hole = hole[:, 0]
    rows, cols = hole.any(2), hole.any(1)
    assert torch.equal(hole, rows[:, :, None] & cols[:, None, :])  # one axis-aligned rectangle
    area = hole.sum((1, 2))
    assert area.max() == 256 and area.min() >= 64  # 16x16, at least a quarter left at a corner
    assert (area < 256).any()  # squares centred near the border are clipped
    assert torch.equal(out[~hole[:, None].expand_as(x)], x[~hole[:, None].expand_as(x)])
    full = augment.augment(x, "crop_flip_cutout", torch.Generator().manual_seed(1))
    assert ((full == 0).all(1).sum((1, 2)) >= 64).all()


def test_predict_restores_training_mode(tiny_cnn):
    tiny_cnn.train()
    scores = train.predict(tiny_cnn, torch.rand(7, 1, 8, 8), batch_size=3, device="cpu")
    assert scores.shape == (7, 3) and tiny_cnn.training


def test_bad_recipe_names_are_explained(make_model, blobs):
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        train.fit(make_model(), blobs, Recipe(epochs=1, optimizer="rmsprop"), device="cpu")


def test_quick_training_of_a_registered_model_never_touches_committed_checkpoints(
        tmp_path, monkeypatch):
    monkeypatch.setattr(config, "BUILD_DIR", tmp_path)
    committed = sorted(config.CHECKPOINT_DIR.iterdir())
    meta = train.train_registered("lenet_mnist", quick=True, device="cpu")
    assert sorted(config.CHECKPOINT_DIR.iterdir()) == committed
    saved = json.loads((tmp_path / "checkpoints" / "lenet_mnist.json").read_text())
    assert saved["quick"] is True and saved["train_size"] == 2_000
    assert saved["test_size"] == 1_000 and saved == {**meta, "name": "lenet_mnist",
                                                     "n_parameters": 61_706,
                                                     "sha256": saved["sha256"]}
    assert saved["test_accuracy"] > 0.5  # 3 epochs on 2,000 real digits
    assert models.load_pretrained("lenet_mnist", directory=tmp_path / "checkpoints")


def test_full_training_refuses_subset_data(tmp_path, monkeypatch):
    from xai_helpers import data

    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path))  # only the committed samples
    with pytest.raises(data.DataUnavailableError, match="needs the whole mnist"):
        train.train_registered("lenet_mnist", device="cpu")


def test_load_or_train(tmp_path, monkeypatch):
    committed = train.load_or_train("lenet_mnist")
    assert not committed.training
    monkeypatch.setattr(config, "BUILD_DIR", tmp_path)
    retrained = train.load_or_train("lenet_mnist", retrain=True, device="cpu")
    assert (tmp_path / "checkpoints" / "lenet_mnist.pt").exists()
    assert not torch.equal(retrained.conv1.weight, committed.conv1.weight)


def test_validation_split_holds_out_the_last_images_and_never_loads_the_test_set(
        tmp_path, monkeypatch):
    from xai_helpers import data

    monkeypatch.setattr(config, "BUILD_DIR", tmp_path)
    committed = sorted(config.CHECKPOINT_DIR.iterdir())
    splits, load = [], data.load
    monkeypatch.setattr(data, "load", lambda name, split="test", **kw: (
        splits.append(split), load(name, split, **kw))[1])
    meta = train.train_registered("lenet_mnist", quick=True, device="cpu", epochs=1,
                                  validation=400)
    assert splits == ["train"]  # the test set is not even loaded
    assert sorted(config.CHECKPOINT_DIR.iterdir()) == committed
    assert meta["train_size"] == 1_600 and meta["validation_size"] == 400
    assert "test_accuracy" not in meta and len(meta["history_validation_accuracy"]) == 1
    assert meta["history_validation_accuracy"][-1] == meta["validation_accuracy"]
    assert (tmp_path / "checkpoints" / "validation" / "lenet_mnist.json").exists()
    with pytest.raises(ValueError, match="validation must be between"):
        train.train_registered("lenet_mnist", quick=True, device="cpu", validation=5_000)


def test_a_final_run_measures_the_test_set_once_at_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "BUILD_DIR", tmp_path)
    from xai_helpers import scoring

    calls, evaluate = [], scoring.evaluate
    for module in (train, scoring):  # the loop's and the final measurement's
        monkeypatch.setattr(module, "evaluate", lambda model, d, **kw: (
            calls.append((d.split, len(d))), evaluate(model, d, **kw))[1])
    meta = train.train_registered("lenet_mnist", quick=True, device="cpu", epochs=2)
    assert calls == [("test", 1_000)]  # after training, not after every epoch
    assert "history_test_accuracy" not in meta and len(meta["history_train_accuracy"]) == 2


def test_a_missing_parent_is_trained_first_into_the_output_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "BUILD_DIR", tmp_path)
    spec = models.REGISTRY["lenet_mnist"]
    parent = models.ModelSpec(**{**spec.__dict__, "name": "lenet_parent"})
    child = models.ModelSpec(**{**spec.__dict__, "name": "lenet_child",
                                "recipe": replace(spec.recipe, init="lenet_parent")})
    monkeypatch.setitem(models.REGISTRY, "lenet_parent", parent)
    monkeypatch.setitem(models.REGISTRY, "lenet_child", child)
    assert models.chain("lenet_child") == ["lenet_parent", "lenet_child"]
    train.train_registered("lenet_child", quick=True, device="cpu", epochs=1)
    out = tmp_path / "checkpoints"
    assert (out / "lenet_parent.pt").exists() and (out / "lenet_child.pt").exists()
    assert not (config.CHECKPOINT_DIR / "lenet_parent.pt").exists()
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        train.train_registered("lenet_child", quick=True, device="cpu", epochs=0)


def test_wilson_interval_known_values():
    low, high = train.wilson_interval(0.9, 1000)  # textbook: 0.8798 .. 0.9170
    assert low == pytest.approx(0.8798, abs=1e-4) and high == pytest.approx(0.9170, abs=1e-4)
    assert train.wilson_interval(1.0, 10)[1] == 1.0 and train.wilson_interval(0.0, 10)[0] == 0.0


def test_jpeg_report_measures_the_exact_part_only(blobs):


    exact = torch.zeros(len(blobs), dtype=torch.bool)
    exact[:100] = True
    mixed = replace(blobs, exact=exact)

    class Brightness(torch.nn.Module):  # class = which 3x3 corner is brightest
        def forward(self, x):
            return torch.stack([x[:, 0, 0:3, 0:3].sum((1, 2)), x[:, 0, 0:3, 5:8].sum((1, 2)),
                                x[:, 0, 5:8, 2:5].sum((1, 2))], 1)

    report = train.jpeg_report(Brightness(), mixed, device="cpu")
    assert report["test_size_exact"] == 100 and report["test_accuracy_exact"] == 1.0
    low, high = report["test_accuracy_exact_ci95"]
    assert low < 1.0 == high
    assert report["jpeg_drop"] == report["test_accuracy_exact"] - report[
        "test_accuracy_exact_recompressed"]


def test_jpeg_augmentation_uses_the_recompressed_copy(make_model, blobs, monkeypatch):
    from xai_helpers import data

    calls = []
    real = data.jpeg_recompress
    monkeypatch.setattr(data, "jpeg_recompress", lambda x: calls.append(len(x)) or real(x))
    train.fit(make_model(), blobs, Recipe(epochs=1, batch_size=50, jpeg_p=0.5), device="cpu")
    assert calls == [len(blobs)]


def test_svhn_training_says_how_to_get_the_data(tmp_path, monkeypatch):
    from xai_helpers import data

    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XAI_DOWNLOAD", "0")
    with pytest.raises(data.DataUnavailableError, match="torchvision downloads svhn"):
        train.train_registered("gcm_svhn", device="cpu")


def test_a_pruned_model_is_not_retrained_by_plain_training(tmp_path):
    with pytest.raises(ValueError, match="python -m xai_helpers.pruning"):
        train.train_registered("mlp_mnist_pruned", quick=True, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())
