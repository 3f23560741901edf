"""tools/promote_checkpoint.py: a new version's weights under the notebooks' name."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace

import pytest
import torch

from xai_helpers import checkpoints, config, data, gcm_models, models, train

spec = importlib.util.spec_from_file_location("promote_checkpoint",
                                              config.ROOT / "tools" / "promote_checkpoint.py")
promote_checkpoint = importlib.util.module_from_spec(spec)
spec.loader.exec_module(promote_checkpoint)


@pytest.fixture
def store(tmp_path):
    """A checkpoint directory holding an untrained gcm_cifar10_v3 with a full-mode JSON."""
    config.set_seed(0)
    model = models.build("gcm_cifar10_v3")
    meta = {"dataset": "cifar10", "quick": False, "epochs": 120, "test_accuracy": 0.1,
            **models.recipe_dict(models.REGISTRY["gcm_cifar10_v3"].recipe)}
    checkpoints.save_checkpoint(model, "gcm_cifar10_v3", meta, tmp_path)
    return tmp_path


def test_promote_copies_the_weights_and_measures_them_under_the_new_architecture(store):
    test = data.load("cifar10", "test", n=40, verbose=False)
    test = replace(test, full=True, exact=torch.arange(40) < 20)  # stands in for the full split
    meta = promote_checkpoint.promote("gcm_cifar10_v3", "gcm_cifar10", store, test=test)
    src, dst = (checkpoints.checkpoint_paths(n, store)[0] for n in ("gcm_cifar10_v3",
                                                                    "gcm_cifar10"))
    assert src.read_bytes() == dst.read_bytes()
    assert json.loads((store / "gcm_cifar10.json").read_text()) == meta
    assert meta["name"] == "gcm_cifar10" and meta["promoted_from"] == "gcm_cifar10_v3"
    assert meta["epochs"] == 120 and meta["teachers"] == list(gcm_models.GCM_TEACHERS)  # unchanged
    promoted = checkpoints.load_pretrained("gcm_cifar10", directory=store)
    assert promoted.mirror  # the new architecture: maps averaged with the mirror image's
    assert meta["test_accuracy"] == round(train.evaluate(promoted, test), 6)
    assert meta["test_size_exact"] == 20 and "jpeg_drop" in meta


def test_a_dry_run_measures_the_same_and_writes_nothing(store):
    test = data.load("cifar10", "test", n=40, verbose=False)
    test = replace(test, full=True, exact=torch.arange(40) < 20)
    before = sorted(p.name for p in store.iterdir())
    meta = promote_checkpoint.promote("gcm_cifar10_v3", "gcm_cifar10", store, test=test,
                                      dry_run=True)
    assert sorted(p.name for p in store.iterdir()) == before
    assert meta == promote_checkpoint.promote("gcm_cifar10_v3", "gcm_cifar10", store, test=test)


def test_promote_refuses_quick_checkpoints_other_datasets_and_partial_test_sets(store):
    js = store / "gcm_cifar10_v3.json"
    meta = json.loads(js.read_text())
    with pytest.raises(ValueError, match="is for mnist"):
        promote_checkpoint.promote("gcm_cifar10_v3", "lenet_mnist", store)
    sample = data.load("cifar10", "test", n=10, verbose=False)
    with pytest.raises(data.DataUnavailableError, match="full cifar10 test split"):
        promote_checkpoint.promote("gcm_cifar10_v3", "gcm_cifar10", store, test=sample)
    js.write_text(json.dumps({**meta, "quick": True}))
    with pytest.raises(ValueError, match="quick-mode checkpoint"):
        promote_checkpoint.promote("gcm_cifar10_v3", "gcm_cifar10", store)
    assert not (store / "gcm_cifar10.pt").exists()
