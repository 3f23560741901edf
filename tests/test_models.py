"""Model registry and checkpoint store: layers used once, clear errors, faithful round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
import torch
from torch import nn

from xai_helpers import checkpoints, config, data, gcm, models


def _forward_calls(model: nn.Module, x: torch.Tensor) -> Counter:
    calls: Counter = Counter()
    handles = [m.register_forward_hook(lambda mod, i, o, name=name: calls.update([name]))
               for name, m in model.named_modules() if not list(m.children())]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


@pytest.mark.parametrize("name", sorted(models.REGISTRY))
def test_every_layer_is_its_own_module_used_once(name, monkeypatch):
    monkeypatch.setattr(gcm, "VIEW_BATCH", 0)  # GCM's views one at a time: one call per view
    spec = models.REGISTRY[name]
    info = data.DATASETS[spec.dataset]
    model = spec.build().eval()
    x = torch.rand(2, info.channels, info.size, info.size)
    calls = _forward_calls(model, x)
    leaves = [n for n, m in model.named_modules() if not list(m.children())]
    views = len(model.views()) if hasattr(model, "views") else 1  # GCM: mirror, shifts
    assert calls == Counter(leaves * views)  # every leaf module ran once per view
    assert model(x).shape == (2, len(info.classes))


def test_normalize_is_inside_and_rejects_wrong_shapes():
    model = models.build("lenet_mnist")
    assert isinstance(model[0], models.Normalize)
    x = torch.full((1, 1, 28, 28), 0.1307)
    assert torch.allclose(model[0](x), torch.zeros_like(x), atol=1e-6)
    with pytest.raises(ValueError, match=r"expected images N x 1 x H x W.*x\[None\]"):
        model(torch.rand(1, 28, 28))
    with pytest.raises(ValueError, match="got shape \\(1, 3, 28, 28\\)"):
        model(torch.rand(1, 3, 28, 28))


def test_lenet_parameter_count():
    # conv 6*(25+1) + 16*(6*25+1) + fc 400*120+120 + 120*84+84 + 84*10+10
    assert models.count_parameters(models.build("lenet_mnist")) == 61_706


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet'.*lenet_mnist"):
        models.build("resnet")


def test_save_and_load_round_trip(tmp_path):
    model = models.build("lenet_mnist").eval()
    pt, js = models.save_checkpoint(model, "lenet_mnist", {"dataset": "mnist",
                                                           "test_accuracy": 0.5}, tmp_path)
    meta = json.loads(js.read_text())
    assert meta["n_parameters"] == 61_706 and len(meta["sha256"]) == 64
    loaded = models.load_pretrained("lenet_mnist", directory=tmp_path)
    assert not loaded.training
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))


def test_missing_corrupt_and_mismatching_checkpoints(tmp_path):
    with pytest.raises(models.CheckpointError, match="lenet_mnist.pt is missing.*git checkout"):
        models.load_pretrained("lenet_mnist", directory=tmp_path)
    pt, js = models.save_checkpoint(models.build("lenet_mnist"), "lenet_mnist",
                                    {"dataset": "mnist", "test_accuracy": 0.5}, tmp_path)
    pt.write_bytes(pt.read_bytes()[:100])
    with pytest.raises(models.CheckpointError, match="corrupt.*python -m xai_helpers.train"):
        models.load_pretrained("lenet_mnist", directory=tmp_path)
    # a state dict of another architecture, with a matching hash
    torch.save(nn.Linear(2, 2).state_dict(), pt)
    meta = json.loads(js.read_text())
    meta["sha256"] = checkpoints._sha256(pt)
    js.write_text(json.dumps(meta))
    with pytest.raises(models.CheckpointError, match="does not fit the architecture"):
        models.load_pretrained("lenet_mnist", directory=tmp_path)
    pt.write_bytes(b"not a checkpoint")
    meta["sha256"] = checkpoints._sha256(pt)
    js.write_text(json.dumps(meta))
    with pytest.raises(models.CheckpointError, match="could not be read"):
        models.load_pretrained("lenet_mnist", directory=tmp_path)


def test_every_committed_checkpoint_loads_and_matches_its_json():
    rows = models.pretrained_table()
    assert rows, "data/checkpoints has no checkpoint"
    for row in rows:
        meta = models.read_meta(row["model"])
        assert meta["quick"] is False and meta["test_size"] == \
            data.DATASETS[meta["dataset"]].n_test
        for key in ("dataset", "train_size", "epochs", "optimizer", "seed", "test_accuracy",
                    "n_parameters", "training_time_s", "machine"):
            assert key in meta, f"{row['model']}.json has no {key}"
        model = models.load_pretrained(row["model"])
        assert models.count_parameters(model) == meta["n_parameters"]


@pytest.mark.parametrize("name", sorted(p.stem for p in config.CHECKPOINT_DIR.glob("*.json")))
def test_committed_checkpoint_measures_on_the_samples_what_its_json_records(name):
    """Re-measure every kept checkpoint on the committed samples (CIFAR-10: the 1,000 exact test
    images; MNIST and the house digits: the whole test set); at most one image may differ
    (float rounding on another CPU)."""
    from xai_helpers.scoring import evaluate

    meta = models.read_meta(name)
    assert "test_accuracy_samples" in meta, f"{name}.json records no accuracy on the samples"
    sample = data.load_samples(meta["dataset"], "test")
    assert len(sample) == meta["test_size_samples"]
    accuracy = evaluate(models.load_pretrained(name), sample, device="cpu")
    assert abs(accuracy - meta["test_accuracy_samples"]) <= 1 / len(sample) + 1e-9, \
        f"{name}: {100 * accuracy:.2f}% on {sample.describe()}, its JSON records " \
        f"{100 * meta['test_accuracy_samples']:.2f}%"
    if meta["dataset"] == "cifar10":  # the samples are the exact test images the JSON measured
        assert meta["test_accuracy_samples"] == pytest.approx(meta["test_accuracy_exact"], abs=1e-6)
    elif meta["test_size_samples"] == meta["test_size"]:  # the whole test set
        assert meta["test_accuracy_samples"] == pytest.approx(meta["test_accuracy"], abs=1e-6)


def test_registry_keeps_the_recipes_of_every_committed_models_parents():
    for js in config.CHECKPOINT_DIR.glob("*.json"):
        chain = models.chain(js.stem)  # raises for an unregistered parent
        for parent in chain[:-1]:
            assert models.spec(parent).dataset == models.spec(js.stem).dataset
    assert models.chain("gcm_cifar10") == ["gcm_cifar10_clip", "gcm_cifar10_v14", "gcm_cifar10"]
    meta = models.read_meta("gcm_cifar10")
    recipe = models.recipe_dict(models.spec("gcm_cifar10").recipe)
    assert {k: meta[k] for k in ("epochs", "lr", "augment", "jpeg_p")} == \
        {k: recipe[k] for k in ("epochs", "lr", "augment", "jpeg_p")}


def test_the_store_holds_only_what_is_loaded():
    """No checkpoint without a user: each name appears in a notebook, a test or a benchmark,
    and no two names hold the same bytes."""
    import re

    used = "".join(p.read_text() for folder in ("notebooks", "benchmarks", "tests")
                   for p in (config.ROOT / folder).rglob("*")
                   if p.suffix in (".py", ".ipynb") and p.name != "test_models.py")
    hashes = {}
    for js in config.CHECKPOINT_DIR.glob("*.json"):
        assert re.search(rf"\b{js.stem}\b", used), f"{js.stem} is loaded nowhere"
        hashes.setdefault(models.read_meta(js.stem)["sha256"], []).append(js.stem)
    assert all(len(names) == 1 for names in hashes.values()), hashes


def test_vgg_stand_in_has_five_pooling_points_down_to_1x1():
    model = models.build("vgg_cifar10").eval()
    pools = [n for n, m in model.named_modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 5 and all(n.startswith("features.") for n in pools)
    sizes = {}
    hooks = [model.get_submodule(n).register_forward_hook(
        lambda m, i, o, n=n: sizes.__setitem__(n, tuple(o.shape[-2:]))) for n in pools]
    model(torch.rand(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert [sizes[n] for n in pools] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]


@pytest.mark.parametrize("js", sorted(config.CHECKPOINT_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_committed_checkpoint_json_matches_its_registered_recipe(js):
    meta = json.loads(js.read_text())
    assert meta["name"] == js.stem
    recipe = models.recipe_dict(models.REGISTRY[js.stem].recipe)
    default = models.recipe_dict(models.Recipe(epochs=recipe["epochs"]))
    # a field newer than the checkpoint is absent from its JSON: it must be at its default
    assert {k: meta.get(k, default[k]) for k in recipe} == recipe


@pytest.mark.parametrize("first", ["xai_helpers.models", "xai_helpers.gcm_models"])
def test_the_registry_is_whole_whichever_module_is_imported_first(first):
    code = (f"import {first}; from xai_helpers import models; "
            "print(sorted(models.REGISTRY) == sorted(set(models.REGISTRY)), "
            "'gcm_cifar10' in models.REGISTRY, 'lenet_mnist' in models.REGISTRY)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=config.ROOT, check=True).stdout.split()
    assert out == ["True", "True", "True"]
