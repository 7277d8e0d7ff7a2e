"""Publishing a profile's results: merging shard by shard, and which trainings are current."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kan.data import definition_of
from kan.experiments import progress, runner
from kan.records import publish
from kan.records.provenance import DATA_DEFINITION, code_fingerprint, machine_kind


@pytest.fixture(scope="module")
def results(tiny_sweep, xy_dataset, tmp_path_factory):
    """The tiny sweep trained by current code on this machine."""
    folder = tmp_path_factory.mktemp("results")
    extra = {"profile": "test", "git_commit": "abc", "machine": machine_kind(), "code_fingerprint": code_fingerprint()}
    runner.train_chunk(tiny_sweep, {("synthetic", "xy"): xy_dataset / "synthetic" / "xy"}, folder, extra)
    return folder


def test_publishing_twice_adds_nothing_and_every_training_is_current(tiny_sweep, results, tmp_path):
    first = progress.publish(results, tmp_path, {"profile": "test"}, tiny_sweep)
    again = progress.publish(results, tmp_path, {"profile": "test"}, tiny_sweep)
    records = pd.read_parquet(tmp_path / publish.RUNS)
    assert len(records) == first["runs"] == again["runs"] == sum(len(t.stages) for t in tiny_sweep)
    assert first["changed"] == len(records) and again["changed"] == 0  # the second publish replaces equals
    assert {k: v for k, v in first.items() if k != "changed"} == {k: v for k, v in again.items() if k != "changed"}
    assert records["run_id"].is_unique
    histories = pd.read_parquet(tmp_path / publish.HISTORIES)
    assert histories["run_id"].nunique() == len(tiny_sweep)  # one (the longest) per training
    table = progress.shard_table(tiny_sweep, 4, [], tmp_path, 2)
    assert table["trainings"].sum() == table["current"].sum() == len(tiny_sweep) and table["complete"].all()
    assert json.loads((tmp_path / publish.REPORT_INPUTS).read_text())[publish.COMPLETE] == ["toy_scaling/xy"]


def test_forgotten_runs_make_their_trainings_missing_until_published_again(tiny_sweep, results, tmp_path):
    """`python -m kan forget --status S`: the runs of status S leave the records with their
    histories, their trainings are missing (a shard run trains them again), report.json no longer
    counts their dataset complete, and publishing the results again brings them back."""
    progress.publish(results, tmp_path, {"profile": "test", "deviations": ["kept"]}, tiny_sweep)
    path = tmp_path / publish.RUNS
    records = pd.read_parquet(path)
    last = tiny_sweep[0].stages[-1].run_id
    records.loc[records["run_id"] == last, "status"] = "diverged"
    records.to_parquet(path, index=False)
    assert progress.forget(tmp_path, "diverged", tiny_sweep, "test") == 1
    assert last not in set(pd.read_parquet(path)["run_id"])
    assert last not in set(pd.read_parquet(tmp_path / publish.HISTORIES)["run_id"])
    assert progress.training_state(tiny_sweep[0], publish.published_runs(tmp_path),
                                   progress.data_definitions(tiny_sweep)) == "missing"
    inputs = json.loads((tmp_path / publish.REPORT_INPUTS).read_text())
    assert inputs[publish.COMPLETE] == [] and inputs["deviations"] == ["kept"]
    assert progress.forget(tmp_path, "diverged", tiny_sweep, "test") == 0
    progress.publish(results, tmp_path, {"profile": "test", "deviations": ["kept"]}, tiny_sweep)
    assert json.loads((tmp_path / publish.REPORT_INPUTS).read_text())[publish.COMPLETE] == ["toy_scaling/xy"]


def test_dataset_deviations_of_earlier_publishes_are_kept_in_profile_order(tiny_sweep, results, tmp_path):
    """Two results folders (say two machines' shards) each hold some datasets: the report lists the
    deviations of all of them in the profile's dataset order, whichever was published last, and
    the profile's own list is the latest one."""
    order = ["synthetic/a", "synthetic/b", "special/c"]
    progress.publish(results, tmp_path, {"profile": "test", "deviations": ["old", "synthetic/b: y", "special/c: z"]},
                     tiny_sweep, order)
    progress.publish(results, tmp_path, {"profile": "test", "deviations": ["new", "synthetic/a: x", "synthetic/a: w"]},
                     tiny_sweep, order)
    found = json.loads((tmp_path / publish.REPORT_INPUTS).read_text())["deviations"]
    assert found == ["new", "synthetic/a: x", "synthetic/a: w", "synthetic/b: y", "special/c: z"]
    # b regenerated with another note, c dropped from the profile: their earlier lines go
    progress.publish(results, tmp_path, {"profile": "test", "deviations": ["new", "synthetic/b: y2"]},
                     tiny_sweep, order[:2])
    found = json.loads((tmp_path / publish.REPORT_INPUTS).read_text())["deviations"]
    assert found == ["new", "synthetic/a: x", "synthetic/a: w", "synthetic/b: y2"]


def test_records_of_another_fingerprint_are_stale_and_absent_ones_missing(tiny_sweep, results, tmp_path):
    progress.publish(results, tmp_path, {"profile": "test"}, tiny_sweep)
    path = tmp_path / publish.RUNS
    records = pd.read_parquet(path)
    stale = tiny_sweep[0]
    records.loc[records["training_id"] == stale.stages[-1].run_id, "code_fingerprint"] = "0000000000000000"
    dropped = tiny_sweep[1]
    records[~records["run_id"].isin({s.run_id for s in dropped.stages})].to_parquet(path, index=False)
    table = progress.shard_table(tiny_sweep, 4, [], tmp_path, 1)
    assert table.loc[0, ["current", "stale", "missing"]].tolist() == [len(tiny_sweep) - 2, 1, 1]
    assert not table.loc[0, "complete"]
    records = {r["run_id"]: r for r in pd.read_parquet(path).to_dict("records")}
    assert progress.complete_datasets(tiny_sweep, records) == []  # the report leaves the dataset out
    progress.publish(results, tmp_path, {"profile": "test"}, tiny_sweep)  # the shard published again: current again
    assert progress.shard_table(tiny_sweep, 4, [], tmp_path, 1).loc[0, "complete"]


def test_runs_of_another_profile_or_no_results_are_refused(results, tmp_path):
    with pytest.raises(ValueError, match="come from profile\\(s\\) test, not 'paper'"):
        progress.publish(results, tmp_path / "out", {"profile": "paper"}, [])
    with pytest.raises(FileNotFoundError, match="holds no runs folder"):
        progress.publish(tmp_path / "nothing", tmp_path / "out", {"profile": "test"}, [])
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_training_missing_an_earlier_phase_is_missing(tiny_sweep):
    """Published progress and the runner agree: a training is in only with every phase's run."""
    kan = next(t for t in tiny_sweep if t.kind == "kan" and len(t.stages) > 1)
    current = {"machine": machine_kind(), "code_fingerprint": code_fingerprint(), "status": "ok"}
    records = {s.run_id: {"run_id": s.run_id, **current, DATA_DEFINITION: "d"} for s in kan.stages}
    definitions = {(kan.family, kan.dataset): "d"}
    assert progress.training_state(kan, records, definitions) == "current"
    del records[kan.stages[0].run_id]
    assert progress.training_state(kan, records, definitions) == "missing"


def test_records_of_other_data_are_stale(tiny_sweep, results, tmp_path):
    """Records trained on data whose definition (task, formula, ranges, sizes, seed) is no longer
    what this code generates, or that name none, are stale: the shard trains them again."""
    progress.publish(results, tmp_path, {"profile": "test"}, tiny_sweep)
    path = tmp_path / publish.RUNS
    records = pd.read_parquet(path)
    (xy,) = progress.data_definitions(tiny_sweep).items()
    assert xy == (("synthetic", "xy"), definition_of("synthetic", "xy", tiny_sweep[0].data["spec"], tiny_sweep[0].data["seed"]))
    assert (records[DATA_DEFINITION] == xy[1]).all()  # the runs name the data they trained on
    other, unnamed = tiny_sweep[0], tiny_sweep[1]
    records.loc[records["training_id"] == other.stages[-1].run_id, DATA_DEFINITION] = "0000000000000000"
    records.loc[records["training_id"] == unnamed.stages[-1].run_id, DATA_DEFINITION] = None
    records.to_parquet(path, index=False)
    table = progress.shard_table(tiny_sweep, 4, [], tmp_path, 1)
    assert table.loc[0, ["current", "stale", "missing"]].tolist() == [len(tiny_sweep) - 2, 2, 0]
    found = progress.current_trainings(tiny_sweep, tmp_path)
    assert found == {t.stages[-1].run_id for t in tiny_sweep} - {other.stages[-1].run_id, unnamed.stages[-1].run_id}


def test_current_trainings_follow_the_published_progress(tiny_sweep, results, tmp_path):
    """What a shard run with ``published`` leaves untrained: trainings current by
    :func:`progress.training_state`, one that ended early (diverged) included; a stale one, or one
    whose earlier phase is gone, is trained again."""
    progress.publish(results, tmp_path, {"profile": "test"}, tiny_sweep)
    path = tmp_path / publish.RUNS
    records = pd.read_parquet(path)
    kans = [t for t in tiny_sweep if t.kind == "kan" and len(t.stages) > 1]
    ended, stale, lost = kans[0], kans[1], kans[2]
    records = records[~records["run_id"].isin({ended.stages[-1].run_id, lost.stages[0].run_id})].copy()
    records.loc[records["run_id"] == ended.stages[-2].run_id, "status"] = "diverged"  # ended the training early
    records.loc[records["training_id"] == stale.stages[-1].run_id, "code_fingerprint"] = "0000000000000000"
    records.to_parquet(path, index=False)
    found = progress.current_trainings(tiny_sweep, tmp_path)
    assert ended.stages[-1].run_id in found
    assert found == {t.stages[-1].run_id for t in tiny_sweep} - {stale.stages[-1].run_id, lost.stages[-1].run_id}


def test_report_json_names_the_runs_it_was_written_for(tiny_sweep, results, tmp_path):
    """A publish or forget cut short between runs.parquet and report.json leaves them apart: the
    report refuses such records until they are published again."""
    progress.publish(results, tmp_path, {"profile": "test"}, tiny_sweep)
    assert publish.check_report_inputs(tmp_path)[publish.COMPLETE] == ["toy_scaling/xy"]
    runs = pd.read_parquet(tmp_path / publish.RUNS)
    runs.iloc[1:].to_parquet(tmp_path / publish.RUNS, index=False)  # as a forget killed before report.json
    with pytest.raises(ValueError, match="report.json was not written for the runs.parquet beside it"):
        publish.check_report_inputs(tmp_path)
    empty = tmp_path / "empty" / "results"
    (empty / "runs").mkdir(parents=True)
    progress.publish(empty, tmp_path, {"profile": "test"}, tiny_sweep)
    assert publish.check_report_inputs(tmp_path)[publish.COMPLETE] == []
