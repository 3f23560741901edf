"""`make verify`: re-measures checkpoints and fails on a mismatch or a broken file."""

from __future__ import annotations

import json

import numpy as np

from xai_helpers import config, models, verify


def _store(tmp_path, recorded):
    model = models.load_pretrained("lenet_mnist")
    models.save_checkpoint(model, "lenet_mnist", {"dataset": "mnist",
                                                  "test_accuracy": recorded}, tmp_path)


def _mnist_dir(tmp_path):
    """A data dir whose mnist.npz holds the full MNIST test set (from the committed samples)."""
    folder = tmp_path / "data"
    folder.mkdir()
    with np.load(config.SAMPLES_DIR / "mnist.npz") as d:
        np.savez(folder / "mnist.npz", **{k: d[k] for k in d.files})
    return folder


def test_verify_passes_on_the_recorded_accuracy_and_fails_otherwise(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_DATA_DIR", str(_mnist_dir(tmp_path)))
    recorded = models.read_meta("lenet_mnist")["test_accuracy"]
    store = tmp_path / "ok"
    _store(store, recorded)
    [row] = verify.verify(directory=store)
    assert row["status"] == "ok" and abs(row["measured"] - 100 * recorded) < 1e-6
    bad = tmp_path / "bad"
    _store(bad, recorded - 0.002)  # 0.2 points off
    [row] = verify.verify(directory=bad)
    assert row["status"].startswith("FAILED: differs by 0.20")


def test_verify_reports_broken_files_and_skips_missing_datasets(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path / "empty"))
    store = tmp_path / "store"
    _store(store, 0.99)
    meta = json.loads((store / "lenet_mnist.json").read_text())
    [row] = verify.verify(directory=store)
    assert row["status"].startswith("skipped: no mnist.npz")
    monkeypatch.setenv("XAI_DATA_DIR", str(_mnist_dir(tmp_path)))
    (store / "lenet_mnist.pt").write_bytes(b"broken")
    [row] = verify.verify(directory=store)
    assert row["status"].startswith("FAILED: CheckpointError") and meta["sha256"]


def test_verify_cli_needs_a_data_dir(monkeypatch, capsys):
    monkeypatch.delenv("XAI_DATA_DIR", raising=False)
    assert verify.main([]) == 2
    assert "set XAI_DATA_DIR" in capsys.readouterr().out


def test_verify_prints_the_papers_accuracy_beside_and_never_a_verdict(tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("XAI_DATA_DIR", str(_mnist_dir(tmp_path)))
    store = tmp_path / "store"
    recorded = models.read_meta("lenet_mnist")["test_accuracy"]
    _store(store, recorded)
    spec = models.REGISTRY["lenet_mnist"]
    monkeypatch.setitem(models.REGISTRY, "lenet_mnist",
                        models.ModelSpec(**{**spec.__dict__, "paper_accuracy": 0.999}))
    [row] = verify.verify(directory=store)
    assert row["status"] == "ok" and row["paper"] == 99.9  # reported, not compared
    monkeypatch.setattr(verify, "verify", lambda tolerance, record: [row])
    assert verify.main([]) == 0
    out = capsys.readouterr().out
    assert "99.90" in out and "met" not in out.replace("measured", "")
