"""tools/promote_checkpoint.py: a new version's weights under the notebooks' name."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace

import pytest
import torch

from xai_helpers import checkpoints, config, data, models, train

spec = importlib.util.spec_from_file_location("promote_checkpoint",
                                              config.ROOT / "tools" / "promote_checkpoint.py")
promote_checkpoint = importlib.util.module_from_spec(spec)
spec.loader.exec_module(promote_checkpoint)


@pytest.fixture
def store(tmp_path):
    """A checkpoint directory holding an untrained gcm_cifar10_v14 (gcm_cifar10's parent) with
    a full-mode JSON."""
    config.set_seed(0)
    for name in ("gcm_cifar10_v14",):
        meta = {"dataset": "cifar10", "quick": False, "test_accuracy": 0.1,
                **models.recipe_dict(models.REGISTRY[name].recipe)}
        checkpoints.save_checkpoint(models.build(name), name, meta, tmp_path)
    return tmp_path


def test_promote_copies_the_weights_and_measures_them_under_the_new_architecture(store):
    test = data.load("cifar10", "test", n=40, verbose=False)
    test = replace(test, full=True, exact=torch.arange(40) < 20)  # stands in for the full split
    meta = promote_checkpoint.promote("gcm_cifar10_v14", "gcm_cifar10", store, test=test)
    src, dst = (checkpoints.checkpoint_paths(n, store)[0] for n in ("gcm_cifar10_v14",
                                                                    "gcm_cifar10"))
    assert src.read_bytes() == dst.read_bytes()
    assert json.loads((store / "gcm_cifar10.json").read_text()) == meta
    assert meta["name"] == "gcm_cifar10" and meta["promoted_from"] == "gcm_cifar10_v14"
    assert meta["epochs"] == 40 and meta["init"] == "gcm_cifar10_clip"  # how it was trained
    promoted = checkpoints.load_pretrained("gcm_cifar10", directory=store)
    assert len(promoted.views()) == 1  # Eq. 1 once: no views averaged at inference
    assert meta["test_accuracy"] == round(train.evaluate(promoted, test), 6)
    assert meta["test_size_exact"] == 20 and "jpeg_drop" in meta
    assert meta["test_size_samples"] == 1_000 and 0 <= meta["test_accuracy_samples"] <= 1


def test_promote_refuses_quick_checkpoints_other_datasets_and_partial_test_sets(store):
    js = store / "gcm_cifar10_v14.json"
    meta = json.loads(js.read_text())
    with pytest.raises(ValueError, match="is for mnist"):
        promote_checkpoint.promote("gcm_cifar10_v14", "lenet_mnist", store)
    sample = data.load("cifar10", "test", n=10, verbose=False)
    with pytest.raises(data.DataUnavailableError, match="full cifar10 test split"):
        promote_checkpoint.promote("gcm_cifar10_v14", "gcm_cifar10", store, test=sample)
    js.write_text(json.dumps({**meta, "quick": True}))
    with pytest.raises(ValueError, match="quick-mode checkpoint"):
        promote_checkpoint.promote("gcm_cifar10_v14", "gcm_cifar10", store)
    assert not (store / "gcm_cifar10.pt").exists()


def test_promote_refuses_weights_trained_under_another_parameter_free_build(store):
    # the weights fit (same shapes) but would compute another network: the clipping ReLU
    # changes the function without adding a parameter
    test = data.load("cifar10", "test", n=20, verbose=False)
    test = replace(test, full=True, exact=torch.ones(20, dtype=torch.bool))
    with pytest.raises(checkpoints.CheckpointError, match="trained with clip_negative="):
        promote_checkpoint.promote("gcm_cifar10_v14", "gcm_cifar10_clip", store, test=test)
    assert not (store / "gcm_cifar10_clip.pt").exists()
