"""Wrong input, as students and researchers get it wrong: each case gets a clear error (the
exception type and a message that names the problem) or a correct result, never a traceback
from deep inside and never a silently wrong number. Also: no file the project loads can run
code, and nothing committed is overwritten by a command line without an explicit flag."""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np
import pytest
import torch

from xai_helpers import (
    cav,
    checkpoints,
    config,
    contribution,
    data,
    decline,
    faithfulness,
    methods,
    models,
    pruning,
    train,
)
from xai_helpers.models import Recipe

# --------------------------------------------------------------------------- no file runs code


class Payload:
    """Unpickling this object touches ``marker``: proof that a load ran code."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_a_planted_training_state_is_refused_and_nothing_runs(tiny_cnn, blobs, tmp_path):
    """``fit`` resumes from ``run_dir/state.pt``: a pickle payload there is refused (clear
    message, how to recover) and its code never runs."""
    marker = tmp_path / "ran"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"epoch": 1, "recipe": Payload(marker)}, run / "state.pt")
    with pytest.raises(RuntimeError, match="cannot be loaded safely.*delete"):
        train.fit(tiny_cnn, blobs, Recipe(epochs=1, batch_size=10), device="cpu", run_dir=run)
    assert not marker.exists()


def test_a_planted_checkpoint_is_refused_and_nothing_runs(tmp_path):
    """A checkpoint whose .pt holds a payload (and a JSON whose hash matches it, so the hash
    check passes) is refused by the store with the file's name; the code never runs."""
    marker = tmp_path / "ran"
    pt, js = checkpoints.checkpoint_paths("tiny_cnn_mnist", tmp_path)
    state = models.build("tiny_cnn_mnist").state_dict()
    torch.save({**state, "extra": Payload(marker)}, pt)
    meta = {"name": "tiny_cnn_mnist", "sha256": hashlib.sha256(pt.read_bytes()).hexdigest()}
    js.write_text(json.dumps(meta))
    with pytest.raises(checkpoints.CheckpointError, match="could not be read"):
        models.load_pretrained("tiny_cnn_mnist", directory=tmp_path)
    assert not marker.exists()


def test_every_torch_load_in_the_project_is_weights_only():
    """A source scan: every ``torch.load(`` call in the package, tools, benchmarks and
    notebooks passes ``weights_only=True`` (within the call's first lines)."""
    offenders = []
    files = [*config.ROOT.glob("xai_helpers/*.py"), *config.ROOT.glob("tools/*.py"),
             *config.ROOT.glob("benchmarks/*.py"), *config.ROOT.glob("notebooks/*.ipynb")]
    for file in files:
        text = file.read_text()
        start = text.find("torch.load(")
        while start >= 0:
            call = text[start:start + 300].split(")\n")[0]
            if "weights_only=True" not in call.replace('\\"', '"').replace(" ", ""):
                offenders.append(f"{file.name}: {call[:80]!r}")
            start = text.find("torch.load(", start + 1)
    assert not offenders, offenders


# --------------------------------------------------------------------------- nothing overwritten

@pytest.mark.parametrize("kwargs, message", [
    ({"max_rounds": 0}, "max_rounds must be an integer >= 1"),
    ({"max_rounds": 1.5}, "max_rounds must be an integer"),
    ({"retrain_epochs": -1}, "retrain_epochs must be an integer >= 0"),
    ({"until_over_90": 54}, r"share of neurons in \(0, 1\]"),
])
def test_pruning_refuses_nonsensical_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pruning.reproduce(**kwargs)


def test_pruning_writes_into_build_unless_told(monkeypatch, tmp_path):
    """Without --replace-committed the reproduction's outputs go to build/, and the command
    line says so; with it, to data/ (checked without running the reproduction)."""
    seen = {}

    def fake_reproduce(**kwargs):
        seen.update(kwargs)
        return {"accuracy_before": 0.9, "accuracy_after": 0.9, "sparsity": 0.5,
                "neurons_over_90_pruned": 0.5, "neurons_at_most_40_pruned": 0.5, "rounds": 1}

    monkeypatch.setattr(pruning, "reproduce", fake_reproduce)
    pruning.main(["--max-rounds", "1"])
    assert seen["replace_committed"] is False
    pruning.main(["--max-rounds", "1", "--replace-committed"])
    assert seen["replace_committed"] is True
    monkeypatch.undo()
    with pytest.raises(SystemExit):  # argparse error: a message, exit status 2
        pruning.main(["--max-rounds", "0"])


# --------------------------------------------------------------------------- data

@pytest.fixture
def npz_dir(tmp_path, monkeypatch):
    """An XAI_DATA_DIR of our own; write(name, **arrays) puts {name}.npz in it."""
    monkeypatch.setenv("XAI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XAI_DOWNLOAD", "0")

    def write(name="mnist", **arrays):
        np.savez(tmp_path / f"{name}.npz", **arrays)
        return tmp_path / f"{name}.npz"

    return write


def mnist_arrays(n=6, **changes):
    arrays = {"x_test": np.zeros((n, 28, 28), np.uint8), "y_test": np.arange(n) % 10}
    return {**arrays, **changes}


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "10"])
def test_load_refuses_n_that_is_not_a_positive_integer(n):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        data.load("mnist", n=n, verbose=False)


@pytest.mark.parametrize("content, message", [
    (b"this is not a zip file", "not a readable .npz"),
    (b"", "not a readable .npz"),
])
def test_load_names_an_unreadable_npz(npz_dir, content, message):
    path = npz_dir(**mnist_arrays())
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"mnist.npz.*{message}.*complete copy"):
        data.load("mnist", verbose=False)


def test_load_names_a_truncated_npz(npz_dir):
    path = npz_dir(**mnist_arrays(200))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match="not a readable .npz"):
        data.load("mnist", verbose=False)


def test_load_names_an_npz_without_the_arrays(npz_dir):
    npz_dir()  # no arrays at all
    with pytest.raises(ValueError, match="has no array.*x_test, y_test.*it has none"):
        data.load("mnist", verbose=False)


@pytest.mark.parametrize("labels, message", [
    (np.eye(10)[np.arange(6) % 10], "one-hot"),
    ((np.arange(6) % 10).astype(float), "must be integers"),
    (np.zeros((6, 2, 1), int), "one class index per image"),
])
def test_load_refuses_labels_that_would_make_accuracy_wrong(npz_dir, labels, message):
    npz_dir(**mnist_arrays(y_test=labels))
    with pytest.raises(ValueError, match=message):
        data.load("mnist", verbose=False)


def test_load_accepts_a_column_of_labels(npz_dir):
    npz_dir(**mnist_arrays(y_test=(np.arange(6) % 10)[:, None]))
    loaded = data.load("mnist", verbose=False)
    assert loaded.labels.tolist() == [0, 1, 2, 3, 4, 5]


def test_load_refuses_exact_flags_of_the_wrong_length(npz_dir):
    npz_dir(**mnist_arrays(test_exact=np.ones(5, bool)))
    with pytest.raises(ValueError, match="test_exact has shape"):
        data.load("mnist", verbose=False)


def test_partial_torchvision_files_fall_back_to_the_samples(tmp_path, monkeypatch, capsys):
    """Damaged torchvision MNIST files in the data folder: the samples are used, and the
    output says why."""
    monkeypatch.delenv("XAI_DATA_DIR", raising=False)
    monkeypatch.setenv("XAI_DOWNLOAD", "0")
    monkeypatch.setattr(config, "DATA_ROOT", tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for part in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                 "train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / part).write_bytes(b"\x00\x00\x08\x03 truncated")
    loaded = data.load("mnist", n=5)
    assert "samples" in loaded.source
    assert "unreadable" in capsys.readouterr().out


def test_a_relative_data_dir_is_read_from_the_repository_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as a notebook runs in notebooks/
    monkeypatch.setenv("XAI_DATA_DIR", "data/samples")
    assert config.data_dir() == (config.ROOT / "data" / "samples").resolve()
    monkeypatch.setenv("XAI_DATA_DIR", "no/such/folder")
    with pytest.raises(FileNotFoundError, match="names no folder.*repository root"):
        config.data_dir()
    with pytest.raises(FileNotFoundError, match="XAI_DATA_DIR=no/such/folder"):
        data.load("mnist", verbose=False)


# --------------------------------------------------------------------------- model inputs

GOOD = torch.rand(2, 3, 32, 32)


@pytest.mark.parametrize("name", ["cnn_cifar10", "gcm_cifar10"])
@pytest.mark.parametrize("images, message", [
    ((GOOD * 255).to(torch.uint8), "dtype torch.uint8.*x.float\\(\\) / 255"),
    (GOOD * 255, "values up to.*0-255 images"),
    ((GOOD - 0.5) / 0.25, "values down to.*normalised already"),
    (torch.where(GOOD > 0.5, torch.nan, GOOD), "NaN or Inf"),
    (torch.full((2, 3, 32, 32), torch.inf), "NaN or Inf"),
    (torch.rand(0, 3, 32, 32), "empty batch"),
    (GOOD[0], "add a batch axis"),
    (GOOD.permute(0, 2, 3, 1), "reorder HWC"),
    ("an image", "a tensor or NumPy array"),
])
def test_course_models_refuse_what_is_not_an_image_batch(name, images, message):
    model = models.build(name).eval()
    with pytest.raises(ValueError, match=message):
        model(images)


@pytest.mark.parametrize("name", ["cnn_cifar10", "gcm_cifar10"])
def test_course_models_accept_what_converts_safely(name):
    """A float64 tensor and a NumPy array give the float32 tensor's scores."""
    model = models.build(name).eval()
    with torch.no_grad():
        expected = model(GOOD)
        torch.testing.assert_close(model(GOOD.double()), expected)
        torch.testing.assert_close(model(GOOD.numpy()), expected)


@pytest.mark.parametrize("name", ["tiny_cnn_mnist", "lenet_mnist", "mlp_mnist"])
def test_mnist_models_name_the_size_they_need(name):
    with pytest.raises(ValueError, match="expected 28 x 28 images, got 64 x 64"):
        models.build(name)(torch.rand(1, 1, 64, 64))


# --------------------------------------------------------------------------- class indices

@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return models.build("cnn_cifar10").eval()


@pytest.mark.parametrize("target, message", [
    (-1, "out of range.*10 classes"), (10, "out of range"), (1.5, "class index"),
    (True, "class index"), (torch.tensor([0.0, 1.0]), "integer class indices"),
    (torch.tensor([0, 1, 2]), r"one class per image, shape \(2,\)"),
])
def test_every_target_is_a_class_of_the_model(cnn, target, message):
    """The same refusal from the methods, the faithfulness measures, CAV and paper 1."""
    x = GOOD
    calls = [lambda: methods.attribute("cam", cnn, x, target),
             lambda: faithfulness.deletion_curve(cnn, x, target, torch.rand(2, 1, 32, 32)),
             lambda: faithfulness.output_drops(cnn, x, target, torch.zeros(2, 3, 5).long()),
             lambda: cav.explain(cnn, x, target)]
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call()


def test_decline_rate_refuses_labels_beyond_the_classes(cnn):
    with pytest.raises(ValueError, match="labels 10 is out of range"):
        decline.decline_rate(cnn, "cam", GOOD, torch.tensor([3, 10]))


def test_filter_contribution_refuses_a_negative_class():
    net = models.build("tiny_cnn_mnist").eval()
    with pytest.raises(ValueError, match="target -1 is out of range"):
        contribution.filter_contribution(net, torch.rand(2, 1, 28, 28), -1)


# --------------------------------------------------------------------------- knobs, contexts

@pytest.mark.parametrize("window", [0, -8, 2.5])
def test_occlusion_refuses_a_window_that_is_not_a_positive_integer(cnn, window):
    with pytest.raises(ValueError, match="window must be a positive integer"):
        methods.attribute("occlusion", cnn, GOOD, window=window)


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_maps_work_inside_no_grad_and_inference_mode(cnn, context):
    """Gradients are switched on inside (the maps need them); the caller's mode is back after."""
    expected = cav.explain(cnn, GOOD, 3)["input"]
    gb = methods.attribute("guided_backprop", cnn, GOOD, 3)
    with context():
        x = GOOD.clone()  # made under the context, as a student's would be
        torch.testing.assert_close(cav.explain(cnn, x, 3)["input"], expected)
        torch.testing.assert_close(methods.attribute("guided_backprop", cnn, x, 3), gb)
        assert not torch.is_grad_enabled()


def test_a_model_that_averages_views_is_refused_by_layer_methods():
    gcm = models.GCM(shifts=2, mirror=True).eval()
    assert len(gcm.views()) == 10
    with pytest.raises(ValueError, match="averages 10 views"):
        methods.attribute("gradcam", gcm, GOOD)
    assert "gradcam" not in methods.applicable(gcm)


def test_one_pass_gcms_give_one_map_per_image():
    gcm = models.build("gcm_cifar10").eval()
    assert len(gcm.views()) == 1
    assert methods.attribute("cwm", gcm, GOOD[:1].expand(3, -1, -1, -1)).shape[0] == 3


# --------------------------------------------------------------------------- checkpoints

def _copy_checkpoint(name, tmp_path):
    for suffix in (".pt", ".json"):
        (tmp_path / f"{name}{suffix}").write_bytes(
            (config.CHECKPOINT_DIR / f"{name}{suffix}").read_bytes())
    return tmp_path / f"{name}.pt", tmp_path / f"{name}.json"


@pytest.mark.parametrize("change, message", [
    ({"n_parameters": 12}, "says 12 parameters.*do not belong together"),
    ({"dataset": "cifar10"}, "says dataset 'cifar10'.*registered for 'mnist'"),
])
def test_a_sidecar_that_disagrees_with_the_weights_is_refused(tmp_path, change, message):
    _, js = _copy_checkpoint("tiny_cnn_mnist", tmp_path)
    js.write_text(json.dumps({**json.loads(js.read_text()), **change}))
    with pytest.raises(checkpoints.CheckpointError, match=message):
        models.load_pretrained("tiny_cnn_mnist", directory=tmp_path)


def test_weights_with_nan_are_refused(tmp_path):
    pt, js = _copy_checkpoint("tiny_cnn_mnist", tmp_path)
    state = torch.load(pt, weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first].view(-1)[0] = torch.nan
    torch.save(state, pt)
    meta = json.loads(js.read_text())
    js.write_text(json.dumps({**meta, "sha256": hashlib.sha256(pt.read_bytes()).hexdigest()}))
    with pytest.raises(checkpoints.CheckpointError, match=f"NaN or Inf in {first}"):
        models.load_pretrained("tiny_cnn_mnist", directory=tmp_path)


# --------------------------------------------------------------------------- command lines

def _tree(root: pathlib.Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_command_lines_leave_data_alone_without_the_flag(tmp_path, monkeypatch, capsys):
    """Training (quick), the decline benchmark (smoke run) and the filter-search table write
    into build/ (here a temporary one); every file under data/ is byte for byte the same."""
    import importlib.util

    from xai_helpers import filter_search

    monkeypatch.setattr(config, "BUILD_DIR", tmp_path / "build")
    monkeypatch.setenv("XAI_DOWNLOAD", "0")
    before = _tree(config.DATA_ROOT)
    train.main(["tiny_cnn_mnist", "--quick", "--epochs", "1"])
    filter_search.main(["--collect"])
    spec = importlib.util.spec_from_file_location(
        "bench_decline", config.ROOT / "benchmarks" / "bench_decline.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--untrained", "--n", "2", "--speed-n", "2", "--loop-n", "1"])
    with pytest.raises(SystemExit, match="--record keeps full runs only"):
        bench.main(["--untrained", "--n", "2", "--record"])
    assert _tree(config.DATA_ROOT) == before
    assert any((tmp_path / "build" / "checkpoints").glob("tiny_cnn_mnist*.pt"))
    assert (tmp_path / "build" / "results" / "filter_search_mnist.csv").exists()
    assert (tmp_path / "build" / "results" / "decline_rate_cifar10.csv").exists()


@pytest.mark.parametrize("argv", [["tiny_cnn_mnist", "--epochs", "0"],
                                  ["tiny_cnn_mnist", "--epochs", "-1"]])
def test_train_refuses_nonsensical_epochs(argv):
    with pytest.raises((SystemExit, ValueError), match="epochs must be at least 1"):
        train.main(argv)


def test_filter_search_refuses_a_filter_count_below_one():
    from xai_helpers import filter_search

    with pytest.raises(SystemExit):
        filter_search.main(["--n", "0"])
    with pytest.raises(ValueError, match="positive integer"):
        filter_search.run_one(0)
