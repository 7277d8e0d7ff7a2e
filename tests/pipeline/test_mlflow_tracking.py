"""MLflow tracking: one store, tagged runs with params, metrics and artifacts, no duplicates."""

from __future__ import annotations

import json

import pytest

from kan.pipeline.tracking import client, init_tracking, log_run, logged_runs, sqlite_path, tracking_uri
from kan.records.runfiles import METRICS


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """One SQLite store for the module (creating one takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('tracking') / 'mlflow.db'}"


@pytest.fixture
def store(database, tmp_path, request):
    """(uri, experiment id) of a fresh experiment named after the test."""
    return database, init_tracking(database, request.node.name, tmp_path / "mlartifacts")


def test_uri_prefers_config_then_environment_then_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri("", tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert sqlite_path(tracking_uri("", tmp_path)) == tmp_path.resolve() / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert tracking_uri("", tmp_path) == "http://tracking:5000"
    assert tracking_uri("http://other:5000", tmp_path) == "http://other:5000"
    assert sqlite_path("http://tracking:5000") is None


def test_a_sqlite_store_commits_without_waiting_for_the_disk(store):
    uri, _ = store
    with client(uri)._tracking_client.store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 0  # OFF


def test_experiment_opens_on_training_runs(store):
    uri, experiment_id = store
    experiment = client(uri).get_experiment(experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert init_tracking(uri, experiment.name, None) == experiment_id  # found, not created twice


def test_run_is_logged_with_tags_params_metrics_and_artifacts(store, two_runs, tmp_path):
    uri, experiment_id = store
    mlflow = client(uri)
    figure = tmp_path / "curves.png"
    figure.write_bytes(b"png")
    run = mlflow.get_run(log_run(mlflow, experiment_id, two_runs[0], {}, lambda run_dir: [figure]))
    tags = run.data.tags
    assert {tags[k] for k in ("experiment", "dataset", "model", "config_id")} == {"toy_scaling", "xy", "kan", "aaaa00000001"}
    assert "git_commit" in tags and run.data.params["train.steps"] == "3"
    assert run.data.metrics["test_rmse"] == pytest.approx(0.4 / 3) and run.data.metrics["final_n_params"] == 17
    assert len(mlflow.get_metric_history(run.info.run_id, "test_rmse")) == 3
    assert {a.path for a in mlflow.list_artifacts(run.info.run_id)} == {"metrics.json", "model.pt", "curves.png"}


def test_relogging_does_not_duplicate_and_changes_replace(store, two_runs):
    uri, experiment_id = store
    mlflow = client(uri)
    first = [log_run(mlflow, experiment_id, run, logged_runs(mlflow, experiment_id)) for run in two_runs]
    again = [log_run(mlflow, experiment_id, run, logged_runs(mlflow, experiment_id)) for run in two_runs]
    assert first == again and len(logged_runs(mlflow, experiment_id)) == 2
    metrics = json.loads((two_runs[0] / METRICS).read_text())
    (two_runs[0] / METRICS).write_text(json.dumps({**metrics, "test_rmse": 0.01}))
    replaced = log_run(mlflow, experiment_id, two_runs[0], logged_runs(mlflow, experiment_id))
    assert replaced != first[0] and len(logged_runs(mlflow, experiment_id)) == 2


def test_a_rerun_that_only_took_another_time_keeps_its_mlflow_run(store, two_runs):
    """Retraining to identical numbers changes only the wall time in metrics.json; that must not
    replace the MLflow run (the files digest leaves timing out)."""
    uri, experiment_id = store
    mlflow = client(uri)
    first = log_run(mlflow, experiment_id, two_runs[0], logged_runs(mlflow, experiment_id))
    metrics = json.loads((two_runs[0] / METRICS).read_text())
    (two_runs[0] / METRICS).write_text(json.dumps({**metrics, "seconds": metrics["seconds"] + 12.5}, indent=1))
    assert log_run(mlflow, experiment_id, two_runs[0], logged_runs(mlflow, experiment_id)) == first


@pytest.fixture
def science_dir(tmp_path):
    """A finished science experiment folder as the pipeline writes it (made-up numbers)."""
    from kan.records.science_outputs import Outputs, write_run_record

    out = Outputs(tmp_path / "science" / "pde")
    out.summary({"kan.l2": 1e-3, "mlp.l2": float("nan")})
    out.figure("pde_errors").write_bytes(b"png")
    (out.root / "tables" / "errors.csv").write_text("model,l2\nKAN,0.001\n")
    write_run_record(out.root, {"experiment": "pde", "config_id": "5c1e5c1e5c1e", "settings": {"kan_grids": [5, 10]},
                                "family": "pde", "dataset": "poisson", "model": "kan,mlp", "section": "3.4",
                                "status": "ok", "profile": "test", "git_commit": "abc", "seconds": 1.0})
    return out.root


def test_science_run_is_logged_once_and_replaced_when_its_files_change(store, science_dir):
    from kan.records.science_outputs import SUMMARY
    from kan.pipeline.tracking import log_science_run

    uri, experiment_id = store
    mlflow = client(uri)
    first = log_science_run(mlflow, experiment_id, science_dir, logged_runs(mlflow, experiment_id))
    assert log_science_run(mlflow, experiment_id, science_dir, logged_runs(mlflow, experiment_id)) == first
    run = mlflow.get_run(first)
    assert {run.data.tags[k] for k in ("experiment", "variant", "config_id", "git_commit")} == {"pde", "science", "5c1e5c1e5c1e", "abc"}
    assert run.data.params["kan_grids"] == "[5, 10]" and run.data.metrics == {"kan.l2": 1e-3}  # NaN left out
    assert {a.path for a in mlflow.list_artifacts(first)} == {"summary.json", "run.json", "figures", "tables"}
    (science_dir / SUMMARY).write_text(json.dumps({"kan.l2": 2e-3}))
    replaced = log_science_run(mlflow, experiment_id, science_dir, logged_runs(mlflow, experiment_id))
    assert replaced != first and list(logged_runs(mlflow, experiment_id)) == ["5c1e5c1e5c1e"]


def test_a_run_killed_while_being_logged_is_replaced_on_the_next_pass(store, two_runs, monkeypatch):
    """A logging job killed after creating the MLflow run leaves it RUNNING with part of its
    artifacts; that run does not count as logged, and the next pass replaces it."""
    from mlflow import MlflowClient

    uri, experiment_id = store
    mlflow = client(uri)
    real = MlflowClient.log_artifact

    def killed_after_first_artifact(self, run_id, path, *args, **kwargs):
        real(self, run_id, path, *args, **kwargs)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(MlflowClient, "log_artifact", killed_after_first_artifact)
    with pytest.raises(KeyboardInterrupt):
        log_run(mlflow, experiment_id, two_runs[0], logged_runs(mlflow, experiment_id))
    monkeypatch.undo()
    (half,) = mlflow.search_runs([experiment_id])
    assert half.info.status == "RUNNING"
    repaired = log_run(mlflow, experiment_id, two_runs[0], logged_runs(mlflow, experiment_id))
    (run,) = mlflow.search_runs([experiment_id])
    assert run.info.run_id == repaired != half.info.run_id and run.info.status == "FINISHED"
    assert {a.path for a in mlflow.list_artifacts(repaired)} == {"metrics.json", "model.pt"}


def test_a_run_shows_the_trainings_own_start_end_and_dataset(store, tmp_path, xy_dataset, make_run):
    from kan.pipeline.tracking import dataset_digest

    uri, experiment_id = store
    mlflow = client(uri)
    folder = make_run(tmp_path / "results", "cccc00000003", seconds=90.0, finished_at=1.7e9)
    run = mlflow.get_run(log_run(mlflow, experiment_id, folder, {}, dataset_root=xy_dataset))
    assert (run.info.start_time, run.info.end_time) == (int((1.7e9 - 90.0) * 1000), int(1.7e9 * 1000))
    (logged,) = run.inputs.dataset_inputs
    meta = json.loads((xy_dataset / "synthetic" / "xy" / "meta.json").read_text())
    assert logged.dataset.name == "synthetic/xy" and logged.dataset.source_type == "local"
    assert json.loads(logged.dataset.schema)["inputs"] == meta["inputs"]
    assert logged.dataset.digest == dataset_digest(meta) != dataset_digest({"checksums": {**meta["checksums"], "test.parquet": "0"}})


def test_the_phases_of_a_training_are_nested_under_its_final_run(store, tmp_path, make_run):
    from kan.pipeline.tracking import log_trainings

    uri, experiment_id = store
    mlflow = client(uri)
    phases = [make_run(tmp_path / "results", f"dddd0000000{k}", model="kan", variant="unpruned", grid=g, steps=k,
                       training_id="dddd00000003", final_stage=k == 3) for k, g in ((1, 3), (2, 5), (3, 10))]
    logged = log_trainings(mlflow, experiment_id, phases, {}, figures=lambda run: [])
    parent = logged["dddd00000003"]
    children = {r.info.run_id: r for r in mlflow.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent}'")}
    assert set(children) == {logged["dddd00000001"], logged["dddd00000002"]}
    assert "mlflow.parentRunId" not in mlflow.get_run(parent).data.tags


def test_each_step_is_logged_once_on_the_longest_run(store, tmp_path, make_run):
    """An earlier phase's steps are the longest run's first ones: it keeps only its last step's
    metrics, so the UI's run table still shows its test RMSE."""
    from kan.pipeline.tracking import log_trainings

    uri, experiment_id = store
    mlflow = client(uri)
    phases = [make_run(tmp_path / "results", f"eeee0000000{k}", model="kan", variant="unpruned", grid=g, steps=k,
                       training_id="eeee00000002", final_stage=k == 2) for k, g in ((1, 3), (2, 5))]
    logged = log_trainings(mlflow, experiment_id, phases, {}, figures=lambda run: [])
    assert [p.step for p in mlflow.get_metric_history(logged["eeee00000002"], "test_rmse")] == [1, 2, 3]
    (last,) = mlflow.get_metric_history(logged["eeee00000001"], "test_rmse")
    assert (last.step, last.value) == (3, pytest.approx(0.4 / 3))
    assert mlflow.get_run(logged["eeee00000001"]).data.metrics["final_n_params"] == 17


def test_the_experiment_says_what_it_holds(database, tmp_path):
    experiment_id = init_tracking(database, "described", None, "KAN runs of the ci profile; report: reports/paper_vs_ours.md")
    tags = client(database).get_experiment(experiment_id).tags
    assert tags["mlflow.note.content"].startswith("KAN runs of the ci profile")


def test_runs_no_longer_on_disk_or_in_the_config_are_retired(store, two_runs, science_dir):
    from kan.pipeline.tracking import log_science_run, retire_runs

    uri, experiment_id = store
    mlflow = client(uri)
    for run in two_runs:
        log_run(mlflow, experiment_id, run, logged_runs(mlflow, experiment_id))
    log_science_run(mlflow, experiment_id, science_dir, logged_runs(mlflow, experiment_id))
    kept, gone = two_runs[0].name, two_runs[1].name
    assert retire_runs(mlflow, experiment_id, "feynman", [kept]) == []  # another pipeline experiment: untouched
    assert retire_runs(mlflow, experiment_id, "toy_scaling", [kept]) == [gone]
    active = logged_runs(mlflow, experiment_id)
    assert kept in active and gone not in active and len(active) == 2  # the science run stays
    assert mlflow.get_run(active[kept][0]).info.lifecycle_stage == "active"


def test_runs_of_experiments_dropped_from_the_config_are_retired(store, two_runs, science_dir):
    from kan.pipeline.tracking import log_science_run, retire_dropped_experiments

    uri, experiment_id = store
    mlflow = client(uri)
    for run in two_runs:  # both of pipeline experiment toy_scaling
        log_run(mlflow, experiment_id, run, logged_runs(mlflow, experiment_id))
    log_science_run(mlflow, experiment_id, science_dir, logged_runs(mlflow, experiment_id))
    own = mlflow.create_run(experiment_id, tags={"experiment": "mine"}).info.run_id  # logged by hand: no config_id
    assert retire_dropped_experiments(mlflow, experiment_id, ["toy_scaling", "feynman"]) == []
    assert sorted(retire_dropped_experiments(mlflow, experiment_id, ["feynman"])) == sorted(r.name for r in two_runs)
    assert mlflow.get_run(own).info.lifecycle_stage == "active"
    assert list(logged_runs(mlflow, experiment_id)) == ["5c1e5c1e5c1e"]  # the science run stays


def test_figures_are_drawn_only_for_runs_that_get_logged(store, two_runs, tmp_path):
    uri, experiment_id = store
    mlflow = client(uri)
    drawn = []

    def figures(run_dir):
        drawn.append(run_dir.name)
        (tmp_path / "curves.png").write_bytes(b"png")
        return [tmp_path / "curves.png"]

    first = log_run(mlflow, experiment_id, two_runs[0], logged_runs(mlflow, experiment_id), figures)
    assert log_run(mlflow, experiment_id, two_runs[0], logged_runs(mlflow, experiment_id), figures) == first
    assert drawn == [two_runs[0].name]  # the second pass found it logged unchanged: nothing drawn


def test_a_tie_in_steps_makes_the_final_stage_the_parent(store, tmp_path, make_run):
    """A last grid phase that diverged at its first step has as many steps as the phase before."""
    from kan.pipeline.tracking import log_trainings

    uri, experiment_id = store
    mlflow = client(uri)
    phases = [make_run(tmp_path / "results", f"eeee0000000{k}", model="kan", variant="unpruned", grid=g, steps=steps,
                       training_id="eeee00000002", final_stage=k == 2) for k, g, steps in ((1, 100, 7), (2, 200, 7))]
    logged = log_trainings(mlflow, experiment_id, phases, {}, figures=lambda run: [])
    child = mlflow.get_run(logged["eeee00000001"]).data.tags
    assert child["mlflow.parentRunId"] == logged["eeee00000002"]
    assert "mlflow.parentRunId" not in mlflow.get_run(logged["eeee00000002"]).data.tags


def test_a_former_child_that_becomes_the_parent_is_unnested(store):
    from kan.pipeline.tracking import nest

    uri, experiment_id = store
    mlflow = client(uri)
    first, second = (mlflow.create_run(experiment_id).info.run_id for _ in range(2))
    nest(mlflow, first, [second])
    nest(mlflow, second, [first])  # the training was cut short: the earlier phase is now its longest run
    assert mlflow.get_run(first).data.tags["mlflow.parentRunId"] == second
    assert "mlflow.parentRunId" not in mlflow.get_run(second).data.tags


def test_a_missing_or_deleted_experiment_is_named(database, tmp_path):
    from kan.pipeline.tracking_jobs import _tracking_store

    with pytest.raises(ValueError, match="has no experiment 'nowhere'.*tracking.experiment.*--forcerun tracking_store"):
        _tracking_store(database, "nowhere")
    experiment_id = init_tracking(database, "deleted in the UI", tmp_path)
    client(database).delete_experiment(experiment_id)
    with pytest.raises(ValueError, match="has only a deleted experiment 'deleted in the UI'"):
        _tracking_store(database, "deleted in the UI")
    assert init_tracking(database, "deleted in the UI", tmp_path) == experiment_id  # the store job restores it
    assert _tracking_store(database, "deleted in the UI")[1] == experiment_id


def test_a_science_run_of_earlier_settings_is_retired(store, science_dir, tmp_path):
    """A settings change gives the experiment a new config id in the same folder."""
    from kan.pipeline.tracking_jobs import log_science
    from kan.records.science_outputs import RUN_RECORD

    uri, experiment_id = store
    experiment = client(uri).get_experiment(experiment_id).name
    log_science(uri, experiment, [science_dir], tmp_path / "first.json")
    record = json.loads((science_dir / RUN_RECORD).read_text())
    (science_dir / RUN_RECORD).write_text(json.dumps({**record, "config_id": "0dd5e771a9e5", "settings": {"kan_grids": [5]}}))
    log_science(uri, experiment, [science_dir], tmp_path / "second.json")
    active = logged_runs(client(uri), experiment_id)
    assert "0dd5e771a9e5" in active and "5c1e5c1e5c1e" not in active


def test_a_record_beyond_one_batch_is_logged_whole(store):
    """More params (250) and metric values (2 × 600 steps and the final ones) than one MLflow
    batch takes (100 params, 1000 metric values): every param and every step arrives."""
    import pandas as pd

    from kan.pipeline.tracking import log_record

    uri, experiment_id = store
    mlflow = client(uri)
    record = {"run_id": "dddd00000004", "experiment": "toy_scaling", "dataset": "xy", "variant": "human",
              "shape": "[2,1]", "grid": 5, "seed": 0, "status": "ok", "steps": 600,
              "config": {"sweep": {f"knob{i:03d}": i for i in range(250)}}}
    history = pd.DataFrame({"step": range(1, 601), "train_rmse": 1.0, "test_rmse": [1.0 / s for s in range(1, 601)]})
    run = mlflow.get_run(log_record(mlflow, experiment_id, record, history, "digest", {}))
    assert len(run.data.params) == 250 and run.data.params["sweep.knob249"] == "249"
    steps = mlflow.get_metric_history(run.info.run_id, "test_rmse")
    assert sorted(m.step for m in steps) == list(range(1, 601))
    assert len(mlflow.get_metric_history(run.info.run_id, "train_rmse")) == 600
    assert run.data.metrics["final_steps"] == 600 and run.info.status == "FINISHED"
