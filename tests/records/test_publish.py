"""Published records: histories thinned for publishing; merging results into the records (a run
id's newest current record wins, with its history; runs the profile no longer has and hidden
leftovers of interrupted writes are left out)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from kan.experiments import progress
from kan.records import publish
from kan.records.provenance import UNKNOWN, UNRECORDED, code_fingerprint, machine_kind
from kan.records.runfiles import HISTORY_COLUMNS


def _history(steps_per_phase: int, grids: list[int]) -> pd.DataFrame:
    rows = [{"step": i * steps_per_phase + s + 1, "grid": g} for i, g in enumerate(grids) for s in range(steps_per_phase)]
    return pd.DataFrame(rows).reindex(columns=list(HISTORY_COLUMNS), fill_value=0.5)


def test_a_thinned_history_keeps_the_first_step_every_nth_and_each_phase_end():
    history = _history(60, [3, 5, 10])
    kept = publish.thinned_history(history, every=25)["step"].tolist()
    assert kept == [1, 25, 50, 60, 75, 100, 120, 125, 150, 175, 180]


# Merging results into published records ---------------------------------------------------------

STALE = "0000000000000000"


def _record(run_id: str, fingerprint: str | None = None, **metrics) -> dict:
    """metrics.json keys of a published-looking run: profile "test", this machine, current code
    (unless ``fingerprint`` says otherwise), its own training."""
    return {"profile": "test", "machine": machine_kind(), "code_fingerprint": fingerprint or code_fingerprint(),
            "training_id": run_id, "cpu_seconds": 1.0, **metrics}


def _run(make_run, results: Path, run_id: str, scale: float, fingerprint: str | None = None, **metrics) -> Path:
    """A fake run whose history's train RMSE is scaled by ``scale`` (to tell whose history is kept)."""
    directory = make_run(results, run_id, **_record(run_id, fingerprint, **metrics))
    history = pd.read_parquet(directory / "history.parquet")
    history.assign(train_rmse=history["train_rmse"] * scale).to_parquet(directory / "history.parquet", index=False)
    return directory


@pytest.mark.parametrize(("published", "read", "kept"), [
    ((None, 200.0), (None, 100.0), "published"),  # an older record does not replace a newer one
    ((None, 100.0), (STALE, 300.0), "published"),  # nor does a stale one a current one, however late
    ((STALE, 300.0), (None, 100.0), "read"),  # a current record replaces a stale one
    ((None, 100.0), (None, 200.0), "read"),  # and a newer one an older one
    ((None, float("nan")), (None, 100.0), "read"),  # a record without finished_at is the oldest
])
def test_a_run_ids_newest_current_record_wins_with_its_history(make_run, tmp_path, published, read, kept):
    out, run_id = tmp_path / "published", "aaaa00000001"
    for folder, (fingerprint, finished), scale in (("first", published, 1.0), ("second", read, 10.0)):
        _run(make_run, tmp_path / folder / "results", run_id, scale, fingerprint, finished_at=finished, test_rmse=scale)
        publish.merge(tmp_path / folder / "results", out, "test")
    records = pd.read_parquet(out / publish.RUNS)
    histories = pd.read_parquet(out / publish.HISTORIES)
    want = 1.0 if kept == "published" else 10.0
    assert records["run_id"].tolist() == [run_id] and records.loc[0, "test_rmse"] == want
    assert set(histories["run_id"]) == {run_id}
    assert histories["train_rmse"].tolist() == pytest.approx([want * 0.3 / s for s in (1, 3)])  # thinned: first, last



def test_a_record_on_other_data_than_the_code_generates_never_replaces_one_on_it(make_run, tmp_path):
    """A run trained on data a fix has since changed (same code fingerprint: a paper-only dataset)
    that finishes after the retrained one stays out, however late; the reverse replaces it."""
    out, run_id, definitions = tmp_path / "published", "aaaa00000001", {("synthetic", "xy"): "new-data"}
    for folder, data, finished in (("retrained", "new-data", 100.0), ("late", "old-data", 300.0)):
        _run(make_run, tmp_path / folder / "results", run_id, 1.0, finished_at=finished, data_definition=data)
        publish.merge(tmp_path / folder / "results", out, "test", definitions=definitions)
    assert pd.read_parquet(out / publish.RUNS)["data_definition"].tolist() == ["new-data"]
    publish.merge(tmp_path / "late" / "results", out, "test")  # without definitions: the later one
    publish.merge(tmp_path / "retrained" / "results", out, "test", definitions=definitions)
    assert pd.read_parquet(out / publish.RUNS)["data_definition"].tolist() == ["new-data"]

def test_a_training_keeps_the_history_of_its_longest_kept_run(make_run, tmp_path):
    """A newer publish holding only a training's first phase keeps the published longer run's
    history (one history per training)."""
    out = tmp_path / "published"
    _run(make_run, tmp_path / "a" / "results", "long00000001", 1.0, steps=3, training_id="long00000001", finished_at=1.0)
    publish.merge(tmp_path / "a" / "results", out, "test")
    _run(make_run, tmp_path / "b" / "results", "short0000001", 10.0, steps=2, training_id="long00000001", finished_at=2.0)
    publish.merge(tmp_path / "b" / "results", out, "test")
    assert set(pd.read_parquet(out / publish.HISTORIES)["run_id"]) == {"long00000001"}
    assert set(pd.read_parquet(out / publish.RUNS)["run_id"]) == {"long00000001", "short0000001"}


def test_runs_the_profile_no_longer_has_are_left_out_and_counted(make_run, tiny_sweep, tmp_path):
    out, results = tmp_path / "published", tmp_path / "results"
    ours = tiny_sweep[0].stages[-1].run_id
    _run(make_run, tmp_path / "earlier" / "results", "dead00000001", 1.0)  # trained under an earlier config
    publish.merge(tmp_path / "earlier" / "results", out, "test")
    _run(make_run, results, ours, 1.0, training_id=ours)
    _run(make_run, results, "dead00000002", 1.0)
    added = progress.publish(results, out, {"profile": "test"}, tiny_sweep)
    assert set(pd.read_parquet(out / publish.RUNS)["run_id"]) == {ours}
    assert set(pd.read_parquet(out / publish.HISTORIES)["run_id"]) == {ours}
    assert added["runs"] == 1 and added["left_out"] == 2


def test_hidden_leftovers_of_an_interrupted_write_are_not_runs(make_run, tmp_path):
    results = tmp_path / "results"
    run = make_run(results, "aaaa00000001")
    for leftover in (".aaaa00000001.tmp-x1y2", ".aaaa00000001.old-0123abcd"):
        shutil.copytree(run, run.with_name(leftover))  # each holds a metrics.json
    assert publish.finished_runs(results) == [run]


def test_publishing_a_results_folder_without_runs_keeps_the_records(make_run, tmp_path):
    """How the committed shards.csv and report.json are re-derived from the records alone."""
    out = tmp_path / "published"
    _run(make_run, tmp_path / "a" / "results", "aaaa00000001", 1.0)
    assert publish.merge(tmp_path / "a" / "results", out, "test")[1]["changed"] == 1
    assert publish.merge(tmp_path / "a" / "results", out, "test")[1]["changed"] == 0  # republished: equal records
    before = [pd.read_parquet(out / name) for name in (publish.RUNS, publish.HISTORIES)]
    (tmp_path / "empty" / "results" / "runs").mkdir(parents=True)
    merged, added = publish.merge(tmp_path / "empty" / "results", out, "test")
    assert added["runs"] == added["histories"] == 0
    pd.testing.assert_frame_equal(merged, before[0])
    for name, frame in zip((publish.RUNS, publish.HISTORIES), before):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), frame)



def test_records_of_another_profile_are_never_merged_into_or_forgotten_from(make_run, tiny_sweep, tmp_path):
    """Publishing with the wrong config (another profile's, whose run ids these records lack)
    would drop every published run: refused, naming both profiles, with nothing changed."""
    out = tmp_path / "published"
    _run(make_run, tmp_path / "a" / "results", "aaaa00000001", 1.0)
    progress.publish(tmp_path / "a" / "results", out, {"profile": "test"}, tiny_sweep)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    _run(make_run, tmp_path / "b" / "results", "bbbb00000001", 1.0, profile="ci")
    with pytest.raises(ValueError, match=r"holds records of profile test, not 'ci'"):
        progress.publish(tmp_path / "b" / "results", out, {"profile": "ci"}, tiny_sweep)
    with pytest.raises(ValueError, match=r"holds records of profile test, not 'ci'"):
        progress.forget(out, "diverged", tiny_sweep, "ci")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_a_damaged_published_science_record_stops_the_publish_before_any_write(make_run, tmp_path):
    out, results = tmp_path / "published", tmp_path / "results"
    science = results / "science" / "continual"
    (science / "tables").mkdir(parents=True)
    (science / "run.json").write_text(json.dumps({"profile": "test", "finished_at": 1.0}))
    (science / "summary.json").write_text("{}")
    (results / "runs").mkdir()
    publish.merge(results, out, "test")
    (out / publish.SCIENCE / "continual" / "run.json").write_text("<<<<<<< a merge conflict")
    _run(make_run, results, "aaaa00000001", 1.0)
    with pytest.raises(ValueError, match=r"continual/run.json is not valid JSON"):
        publish.merge(results, out, "test")
    assert pd.read_parquet(out / publish.RUNS).empty  # the run read this time is not in

def test_a_published_science_experiment_is_replaced_only_by_a_newer_current_one(tmp_path):
    machine = machine_kind()
    current = {"machine": machine, "code_fingerprint": code_fingerprint(machine, "continual")}

    def result(folder, run, summary):
        path = tmp_path / folder / "continual"
        (path / "tables").mkdir(parents=True)
        (path / "run.json").write_text(json.dumps(run))
        (path / "summary.json").write_text(json.dumps(summary))
        return path

    out = tmp_path / "published"

    def published(path):
        return [publish.publish_science(d, out) for d in publish.newer_science([path], out)] != []

    assert published(result("first", {**current, "finished_at": 10.0}, {"v": 1}))
    stale = result("stale", {**current, "code_fingerprint": "0123456789abcdef", "finished_at": 20.0}, {"v": 2})
    older = result("older", {**current, "finished_at": 5.0}, {"v": 3})
    newer = result("newer", {**current, "finished_at": 30.0}, {"v": 4})
    assert not published(stale) and not published(older)
    assert json.loads((out / publish.SCIENCE / "continual" / "summary.json").read_text()) == {"v": 1}
    assert published(newer)
    assert json.loads((out / publish.SCIENCE / "continual" / "summary.json").read_text()) == {"v": 4}
    (out / publish.SCIENCE / "continual" / "run.json").write_text("<<<<<<< a merge conflict")
    with pytest.raises(ValueError, match=r"continual/run.json is not valid JSON .*delete .*continual and publish"):
        publish.newer_science([newer], out)


@pytest.mark.parametrize("placeholder", [UNRECORDED, UNKNOWN])
def test_a_placeholder_fingerprint_is_never_current(monkeypatch, placeholder):
    """On a kind with no recorded ci values every code has the placeholder: equal, yet no proof."""
    monkeypatch.setattr(publish, "code_fingerprint", lambda machine, science=None: placeholder)
    assert not publish.is_current({"machine": "x86_64-SomeVendor-sse2", "code_fingerprint": placeholder})
    monkeypatch.setattr(publish, "code_fingerprint", lambda machine, science=None: "f00d")
    assert publish.is_current({"machine": "x86_64-SomeVendor-sse2", "code_fingerprint": "f00d"})


def test_runs_without_a_training_id_keep_a_history_each(make_run, tmp_path):
    results = tmp_path / "results"
    runs = [make_run(results, run_id, training_id=None) for run_id in ("aaaa00000001", "bbbb00000002")]
    assert set(publish.training_histories(runs)["run_id"]) == {"aaaa00000001", "bbbb00000002"}


def test_on_a_tie_in_steps_the_final_stage_keeps_the_history(make_run, tmp_path):
    """A last grid phase that diverged at its first step records as many steps as the phase
    before; the final stage is the training's longest run everywhere (MLflow nests under it too)."""
    results = tmp_path / "results"
    earlier, final = (make_run(results, run_id, training_id="cccc00000003", final_stage=run_id.endswith("3"))
                      for run_id in ("aaaa00000001", "cccc00000003"))
    for order in ([earlier, final], [final, earlier]):
        assert set(publish.training_histories(order)["run_id"]) == {"cccc00000003"}
    records = pd.DataFrame({"run_id": ["aaaa00000001", "cccc00000003"], "training_id": ["cccc00000003"] * 2,
                            "steps": [3, 3], "final_stage": [False, True]})
    histories = pd.DataFrame({"run_id": ["aaaa00000001", "cccc00000003", "cccc00000003"], "step": [1, 1, 2]})
    for frame in (records, records.iloc[::-1]):
        assert set(publish.longest_histories(histories, frame)["run_id"]) == {"cccc00000003"}


def _science_result(results: Path, name: str, run: str, summary: str = "{}") -> None:
    folder = results / "science" / name
    (folder / "tables").mkdir(parents=True)
    (folder / "run.json").write_text(run)
    (folder / "summary.json").write_text(summary)


def test_science_of_another_profile_is_refused_before_anything_is_written(make_run, tmp_path):
    results, out = tmp_path / "results", tmp_path / "published"
    _run(make_run, results, "aaaa00000001", 1.0)
    _science_result(results, "continual", json.dumps({"profile": "ci"}))
    with pytest.raises(ValueError, match=r"continual \(ci\).*'test'"):
        publish.merge(results, out, "test")
    assert not out.exists()


def test_a_broken_science_record_is_named_before_anything_is_written(make_run, tmp_path):
    results, out = tmp_path / "results", tmp_path / "published"
    _run(make_run, results, "aaaa00000001", 1.0)
    _science_result(results, "pde", '{"profile": "test", "cpu_sec')  # cut short by a full disk
    with pytest.raises(ValueError, match=r"science/pde/run\.json is not valid JSON"):
        publish.merge(results, out, "test")
    assert not out.exists()
