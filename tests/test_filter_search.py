"""Paper 1's filter-count search: the table is consistent with the models it describes."""

from __future__ import annotations

import json

import pytest

from xai_helpers import config, filter_search, models


def test_collect_writes_a_table_that_read_table_reads_back(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RESULTS_DIR", tmp_path)
    rows_dir = tmp_path / "filter_search"
    rows_dir.mkdir()
    for n, acc in [(1, 0.93), (2, 0.975)]:
        (rows_dir / f"n{n}.json").write_text(json.dumps({
            "n": n, "conv1_filters": n, "conv2_filters": n, "maps": n * n,
            "parameters": models.count_parameters(models.tiny_cnn(n)), "test_accuracy": acc,
            "iterations": 100_000, "training_time_s": 1.0, "seed": 0, "curve": [acc]}))
    rows = filter_search.collect(tmp_path)
    ns = [r["n"] for r in rows]
    assert ns[:2] == [1, 2] and (3 in ns) == (not models.read_meta("tiny_cnn_mnist")["quick"])
    table = filter_search.read_table(tmp_path / "filter_search_mnist.csv")
    assert table[0] == {"n": 1, "conv1_filters": 1, "conv2_filters": 1, "maps": 1,
                        "parameters": 536, "test_accuracy": 0.93, "iterations": 100_000,
                        "training_time_s": 1.0, "seed": 0}


def test_committed_table_matches_the_architectures_and_the_checkpoint():
    table = filter_search.read_table()
    assert table, "data/results/filter_search_mnist.csv is empty"
    for row in table:
        assert row["parameters"] == models.count_parameters(models.tiny_cnn(row["n"]))
        assert row["iterations"] == 100_000 and 0.5 < row["test_accuracy"] <= 1.0
    three = [r for r in table if r["n"] == 3]
    if not three:
        pytest.skip("n = 3 not in the table")
    assert three[0]["test_accuracy"] == models.read_meta("tiny_cnn_mnist")["test_accuracy"]
