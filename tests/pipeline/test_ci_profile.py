"""The ci profile end to end in a scratch directory: data, training, science experiments, tables,
reports, MLflow; its results compared with reports/reference/ci_expected* (tight, where values were
recorded on this kind of machine) and the paper (loose)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kan.pipeline.config import load_yaml
from kan.pipeline.regression import (
    compare_expected, compare_paper, compare_science_expected, compare_science_paper, compare_trends, rows_for_machine,
    science_rows_for_machine,
)
from kan.records.provenance import machine_kind
from kan.science.registry import science_deviations

pytestmark = pytest.mark.slow


def _snakemake(repo: Path, work: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    command = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(work),
               "--profile", str(repo / "profiles" / "ci"), *args]
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def ci_run(repo, tmp_path_factory):
    """(working directory, completed process) of one full ci-profile run."""
    work = tmp_path_factory.mktemp("ci")
    return work, _snakemake(repo, work)


@pytest.fixture(scope="module")
def runs(ci_run):
    work, result = ci_run
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return pd.read_csv(work / "results" / "tables" / "runs.csv")


@pytest.fixture(scope="module")
def reference(repo):
    return load_yaml(repo / "reports" / "reference" / "ci_expected.yaml")


@pytest.fixture(scope="module")
def science(ci_run, runs):
    return pd.read_csv(ci_run[0] / "results" / "tables" / "science.csv")


@pytest.fixture(scope="module")
def science_names(repo):
    return list(load_yaml(repo / "workflow" / "config" / "ci.yaml")["science"])


def _science_ids(work: Path, names: list[str]) -> set[str]:
    from kan.records.science_outputs import read_run_record

    return {read_run_record(work / "results" / "science" / name)["config_id"] for name in names}


def test_runs_are_near_the_papers_numbers(runs, reference, repo):
    paper = load_yaml(repo / "reports" / "reference" / "paper.yaml")
    failures = compare_paper(runs, reference["paper_checks"], paper) + compare_trends(runs, reference["trends"])
    assert not failures, "ci results are too far from the paper:\n" + "\n".join(failures)


def test_reports_are_written(ci_run, runs):
    reports = ci_run[0] / "reports"
    for folder, pattern in (("figures/pareto", "*.png"), ("figures/scaling", "*.png"),
                            ("figures/staircase", "*.png"), ("tables", "*.md")):
        assert list((reports / folder).glob(pattern)), folder
    assert "I.6.20" in (reports / "paper_vs_ours.md").read_text()


def test_science_outputs_are_written(ci_run, science, science_names):
    work = ci_run[0]
    assert sorted(science["experiment"].unique()) == sorted(science_names)
    for name in science_names:
        assert (work / "results" / "science" / name / "summary.json").is_file(), name
        assert list((work / "reports" / "figures" / "science" / name).glob("*.png")), name
        assert list((work / "reports" / "tables" / "science" / name).glob("*.md")), name
    text = (work / "reports" / "paper_vs_ours.md").read_text()
    assert "## Science: PDE: Poisson equation (§3.4)" in text and "## Science: Knot theory (§4.3)" in text
    listed = [deviation for deviation in science_deviations(science_names) if f"\n- {deviation}\n" in text]
    assert listed == science_deviations(science_names), "the report leaves out science experiments' own deviations"


# table fixture -> (expected-values file, comparison, its tolerance in ci_expected.yaml)
EXPECTED_FILES = {"runs": ("ci_expected.csv", compare_expected, "rtol"),
                  "science": ("ci_expected_science.csv", compare_science_expected, "science_rtol")}


def _expected(repo: Path, name: str) -> tuple[pd.DataFrame, bool, dict]:
    """The rows to compare with on this machine kind, whether any were recorded on it, and the
    comparison's extra arguments (science: only the experiments recorded on this kind)."""
    table = pd.read_csv(repo / "reports" / "reference" / name)
    if name == EXPECTED_FILES["science"][0]:
        rows, compared = science_rows_for_machine(table, machine_kind())
        return rows, bool(compared), {"compared": compared}
    return (*rows_for_machine(table, machine_kind()), {})


@pytest.mark.parametrize("table", EXPECTED_FILES)
def test_the_expected_runs_and_numbers_exist(table, request, repo):
    """Which runs and numbers exist, and the exact columns: the same on every machine."""
    name, compare, _ = EXPECTED_FILES[table]
    failures = compare(request.getfixturevalue(table), _expected(repo, name)[0], None)
    assert not failures, f"ci {table} differ from reports/reference/{name}:\n" + "\n".join(failures)


@pytest.mark.parametrize("table", EXPECTED_FILES)
def test_values_match_those_recorded_on_this_machine_kind(table, request, repo, reference):
    name, compare, tolerance = EXPECTED_FILES[table]
    expected, recorded, extra = _expected(repo, name)
    if not recorded:
        pytest.skip(f"no values in reports/reference/{name} recorded on a {machine_kind()} machine (results are "
                    "bitwise repeatable on one kind of CPU only; `make ci-expected` on such a machine records them)")
    failures = compare(request.getfixturevalue(table), expected, reference[tolerance], **extra)
    assert not failures, f"ci {table} differ from reports/reference/{name} ({machine_kind()}):\n" + "\n".join(failures)


def test_science_is_near_the_papers_numbers_and_claims(science, repo, reference):
    paper = load_yaml(repo / "reports" / "reference" / "paper.yaml")
    failures = compare_science_paper(science, reference["science_paper_checks"], reference["science_claims"], paper)
    assert not failures, "ci science results are too far from the paper:\n" + "\n".join(failures)


def test_every_run_is_in_mlflow_once(ci_run, runs, science_names):
    from kan.pipeline.tracking import client, logged_runs

    mlflow = client(f"sqlite:///{ci_run[0] / 'results' / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("kan-ci")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert set(logged_runs(mlflow, experiment.experiment_id)) == set(runs.run_id) | _science_ids(ci_run[0], science_names)


def test_rerun_has_nothing_to_do_and_html_report_builds(ci_run, runs, repo):
    work = ci_run[0]
    assert "Nothing to be done" in _snakemake(repo, work, "-n").stdout
    result = _snakemake(repo, work, "--report", str(work / "report.html"))
    assert result.returncode == 0 and (work / "report.html").stat().st_size > 10_000, result.stderr[-3000:]


def test_science_runs_stay_in_mlflow_once_after_relogging(ci_run, runs, repo, science_names):
    from mlflow.entities import ViewType

    from kan.pipeline.tracking import client

    work = ci_run[0]
    result = _snakemake(repo, work, "--forcerun", "log_science", "results/tracking/science.json")
    assert result.returncode == 0, result.stderr[-3000:]
    mlflow = client(f"sqlite:///{work / 'results' / 'mlflow.db'}")
    experiment_id = mlflow.get_experiment_by_name("kan-ci").experiment_id
    found = mlflow.search_runs([experiment_id], "tags.variant = 'science'", run_view_type=ViewType.ACTIVE_ONLY)
    assert sorted(run.data.tags["config_id"] for run in found) == sorted(_science_ids(work, science_names))
    assert {run.data.tags["experiment"] for run in found} == set(science_names)


@pytest.fixture(scope="module")
def published(ci_run, runs, repo):
    """The ci run published as records (the way the paper run is), in its own folder."""
    records = ci_run[0] / "published"
    command = [sys.executable, "-m", "kan", "publish", str(ci_run[0] / "results"), "--out", str(records),
               "--config", str(repo / "workflow" / "config" / "ci.yaml"), "--shards", "3"]
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return records


def test_published_records_rebuild_the_pipelines_report(ci_run, published, repo):
    """Records alone (no run folders, no training) give the report the pipeline wrote, with the
    records' status on top and each science section pointing at the records beside it instead of
    the pipeline's folders; the tables are the pipeline's too."""
    from kan.reporting.paper_run import PUBLISHED_OUTPUTS, rebuild
    from kan.reporting.science import PIPELINE_OUTPUTS

    shards = pd.read_csv(published / "shards.csv")
    assert shards["complete"].all() and shards["missing"].sum() == 0 and shards["stale"].sum() == 0
    rebuild(published, repo / "reports" / "reference" / "paper.yaml")
    ours = (published / "paper_vs_ours.md").read_text().splitlines()
    pipeline = (ci_run[0] / "reports" / "paper_vs_ours.md").read_text().splitlines()
    names = [folder.name for folder in (published / "science").iterdir()]
    moved = {PIPELINE_OUTPUTS.format(name=name): PUBLISHED_OUTPUTS.format(name=name) for name in names}
    pointed = [line for line in pipeline if any(where in line for where in moved)]
    assert pointed, "the pipeline's report names no science folder"
    for where, there in moved.items():
        pipeline = [line.replace(where, there) for line in pipeline]
    assert ours[2].startswith("**Published records: 3 of 3 shards complete")
    status_end = ours.index(pipeline[2])  # the status and its per-experiment table come first
    assert ours[status_end - 2].startswith("| all | 3 of 3 |") and ours[:2] + ours[status_end:] == pipeline
    tables = ci_run[0] / "reports" / "tables"
    for table in tables.rglob("*.md"):
        assert (published / "tables" / table.relative_to(tables)).read_text() == table.read_text(), table.name
    for folder in ("pareto", "scaling", "staircase"):
        made = {p.name for p in (published / "figures" / folder).glob("*.png")}
        assert made == {p.name for p in (ci_run[0] / "reports" / "figures" / folder).glob("*.png")}, folder


def test_a_fresh_directory_trains_nothing_the_records_hold(ci_run, published, repo, tmp_path):
    """`make paper-shard` passes `published`: on another machine (no run folders) the train chunks
    of trainings already published are done without training."""
    chunks = sorted(p.relative_to(ci_run[0]).as_posix() for p in (ci_run[0] / "results" / "chunks").glob("*/*/*.json"))
    result = _snakemake(repo, tmp_path, *chunks, "--config", f"published={published}")
    assert result.returncode == 0, result.stderr[-3000:]
    for chunk in chunks:
        manifest = json.loads((tmp_path / chunk).read_text())
        assert manifest["trained"] == 0 and manifest["published"] == manifest["trainings"] > 0, chunk
    assert not (tmp_path / "results" / "runs").exists()


def test_published_records_load_into_mlflow_like_the_pipelines_runs(ci_run, runs, published, science_names):
    from kan.pipeline.tracking import client, load_published, logged_runs

    uri = f"sqlite:///{ci_run[0] / 'records.db'}"
    heard = []
    assert load_published(uri, "records", published, lambda done, total: heard.append((done, total))) == len(runs)
    assert heard[-1] == (len(runs), len(runs)) and len(heard) <= 10
    assert all(done < later for (done, _), (later, _) in zip(heard, heard[1:]))
    load_published(uri, "records", published)  # again: nothing is logged twice
    mlflow = client(uri)
    experiment_id = mlflow.get_experiment_by_name("records").experiment_id
    assert set(logged_runs(mlflow, experiment_id)) == set(runs.run_id) | _science_ids(ci_run[0], science_names)
    final = runs.loc[runs["steps"].idxmax()]
    logged = mlflow.search_runs([experiment_id], f"tags.config_id = '{final.run_id}'")[0]
    assert logged.data.metrics["test_rmse"] == pytest.approx(final.test_rmse, rel=1e-6)  # histories are float32
    child = mlflow.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{logged.info.run_id}'")[0]
    assert len(mlflow.get_metric_history(child.info.run_id, "test_rmse")) == 1  # its steps are the parent's first
    assert len(mlflow.get_metric_history(logged.info.run_id, "test_rmse")) > 1


def test_a_run_folder_that_went_missing_is_planned_again(ci_run, runs, repo, tmp_path):
    """`mv results/runs/...` used to leave "Nothing to be done": the chunk that listed the run is
    planned again (its runner retrains what is missing), and nothing once the run is back."""
    work = ci_run[0]
    run = next((work / "results" / "runs").glob("*/*/*"))
    moved = shutil.move(run, tmp_path / run.name)
    try:
        planned = _snakemake(repo, work, "-n").stdout
        assert "rule train_chunk:" in planned and "Params have changed" in planned, planned[-3000:]
    finally:
        shutil.move(moved, run)
    assert "Nothing to be done" in _snakemake(repo, work, "-n").stdout


def test_values_lie_in_the_band_of_every_recorded_kind(runs, repo, reference):
    """The float check that holds on any kind of machine, recorded or not."""
    from kan.pipeline.regression import compare_band

    recorded = pd.read_csv(repo / "reports" / "reference" / "ci_expected.csv")
    failures = compare_band(runs, recorded, reference["band_factor"])
    assert not failures, f"ci runs outside the cross-machine band ({machine_kind()}):\n" + "\n".join(failures)


def _logged_in_a_fresh_process(work: Path, experiment: str) -> set[str]:
    """The config ids logged in ``experiment`` of the work directory's store, read by a new process:
    MLflow keeps one store per URI for a process's life, still on the file a deleted store had."""
    code = ("import json, sys; from kan.pipeline.tracking import client, logged_runs; m = client(sys.argv[1]); "
            "found = m.get_experiment_by_name(sys.argv[2]); "
            "print(json.dumps(sorted(logged_runs(m, found.experiment_id)) if found else None))")
    uri = f"sqlite:///{work / 'results' / 'mlflow.db'}"
    result = subprocess.run([sys.executable, "-c", code, uri, experiment], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout) or ())


def test_a_deleted_mlflow_store_is_recreated_with_every_run(ci_run, runs, repo, science_names):
    """Deleting results/mlflow.db used to leave "Nothing to be done" over an empty MLflow: the run
    recreates the store and logs every run into it again, and then has nothing to do."""
    work = ci_run[0]
    (work / "results" / "mlflow.db").unlink()
    result = _snakemake(repo, work)
    assert result.returncode == 0 and "recreating the MLflow store" in result.stderr, result.stderr[-3000:]
    assert _logged_in_a_fresh_process(work, "kan-ci") == set(runs.run_id) | _science_ids(work, science_names)
    assert "Nothing to be done" in _snakemake(repo, work, "-n").stdout


def test_a_new_experiment_name_gets_every_run_in_the_same_invocation(ci_run, runs, repo, science_names):
    """A changed tracking target used to create an empty experiment and report success; the
    logging jobs now follow the store in the same run (last: it leaves the store renamed)."""
    work = ci_run[0]
    result = _snakemake(repo, work, "--config", "tracking={experiment: kan-ci-renamed}")
    assert result.returncode == 0, result.stderr[-3000:]
    expected = set(runs.run_id) | _science_ids(work, science_names)
    assert _logged_in_a_fresh_process(work, "kan-ci-renamed") == expected
