"""Run files and the aggregate tables the reports read (exact column contract)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from kan.records.aggregate import (
    RUN_COLUMNS, histories_table, manifest_complete, manifest_runs, manifest_state, runs_table, write_tables,
)
from kan.records.runfiles import HISTORY_COLUMNS, is_finished, read_metrics


def test_run_folders_are_complete_and_strict_json(two_runs):
    for run in two_runs:
        assert is_finished(run) and {p.name for p in run.iterdir()} == {"metrics.json", "history.parquet", "model.pt"}
        assert read_metrics(run)["test_accuracy"] is None  # NaN is stored as null
    assert not any(p.name.startswith(".") for p in two_runs[0].parent.iterdir())  # no temporary folders left


def test_runs_table_has_exactly_the_contract_columns(two_runs):
    runs = runs_table(two_runs)
    assert tuple(runs.columns) == RUN_COLUMNS and len(runs) == 2
    assert math.isnan(runs.test_accuracy[0]) and runs.n_params.dtype == "int64"
    assert runs.loc[runs.model == "kan", "activation"].item() == ""


def test_histories_table_has_run_id_and_history_columns(two_runs):
    histories = histories_table(two_runs)
    assert tuple(histories.columns) == ("run_id", *HISTORY_COLUMNS)
    assert histories.groupby("run_id").step.max().tolist() == [3, 3]


def test_tables_come_from_the_manifests(two_runs, tmp_path):
    manifest = tmp_path / "chunk.json"
    manifest.write_text(json.dumps({"runs": [str(r) for r in two_runs + two_runs[:1]]}))
    assert manifest_runs([manifest]) == two_runs
    write_tables([manifest], tmp_path / "runs.csv", tmp_path / "histories.parquet")
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 2
    assert len(pd.read_parquet(tmp_path / "histories.parquet")) == 6


def test_the_rerun_trigger_is_true_while_complete_and_new_each_time_a_run_is_gone(two_runs, tmp_path):
    import shutil

    manifest = tmp_path / "chunk.json"
    assert manifest_state(manifest) is True  # no manifest yet: the chunk's output decides
    manifest.write_text(json.dumps({"runs": [str(r) for r in two_runs]}))
    assert manifest_complete(manifest) and manifest_state(manifest) is True
    shutil.rmtree(two_runs[1])
    first, second = manifest_state(manifest), manifest_state(manifest)
    assert not manifest_complete(manifest)
    assert first is not True and second is not True and first != second  # never the value recorded last time


def test_a_malformed_run_record_is_named_with_what_it_lacks(two_runs):
    metrics = two_runs[1] / "metrics.json"
    record = json.loads(metrics.read_text())
    del record["initial_shape"]
    metrics.write_text(json.dumps({**record, "steps": None}))
    with pytest.raises(ValueError, match=r"bbbb00000002/metrics\.json has no value for initial_shape, steps"):
        runs_table(two_runs)
    metrics.write_text('{"run_id": "bbbb00000002", "steps')  # cut short
    with pytest.raises(ValueError, match=r"bbbb00000002/metrics\.json is not valid JSON"):
        read_metrics(two_runs[1])
