"""The ci profile end to end in a scratch directory: data, training, tables, reports, MLflow;
its results compared with reports/reference/ci_expected.* (tight) and the paper (loose)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kan.experiments.config import load_yaml
from kan.experiments.regression import compare_expected, compare_paper, compare_trends

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


def test_runs_match_the_expected_values(runs, repo, reference):
    expected = pd.read_csv(repo / "reports" / "reference" / "ci_expected.csv")
    failures = compare_expected(runs, expected, reference["rtol"])
    assert not failures, "ci results differ from reports/reference/ci_expected.csv:\n" + "\n".join(failures)


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


def test_every_run_is_in_mlflow_once(ci_run, runs):
    from kan.tracking import client, logged_runs

    mlflow = client(f"sqlite:///{ci_run[0] / 'results' / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("kan-ci")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert set(logged_runs(mlflow, experiment.experiment_id)) == set(runs.run_id)


def test_rerun_has_nothing_to_do_and_html_report_builds(ci_run, runs, repo):
    work = ci_run[0]
    assert "Nothing to be done" in _snakemake(repo, work, "-n").stdout
    result = _snakemake(repo, work, "--report", str(work / "report.html"))
    assert result.returncode == 0 and (work / "report.html").stat().st_size > 10_000, result.stderr[-3000:]
