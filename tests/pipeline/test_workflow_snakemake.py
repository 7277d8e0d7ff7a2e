"""The Snakemake workflow: lint-clean, dry-runs of every profile from a fresh working
directory, and a bad config stopping the run before any job, naming the key."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


@pytest.fixture
def snakemake(repo, tmp_path):
    """``snakemake(*args)``: run the repository's workflow in an empty working directory."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(tmp_path), *args]
        return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)

    return run


def test_lint_is_clean(snakemake):
    result = snakemake("--lint")
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr, result.stdout + result.stderr


def test_default_dry_run_reaches_every_output(snakemake):
    result = snakemake("-n")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for rule in ("generate_dataset", "train_chunk", "aggregate_runs", "figures_pareto", "figures_scaling",
                 "figures_staircase", "report_tables", "paper_vs_ours", "tracking_store", "log_runs", "science",
                 "aggregate_science", "log_science", "all"):
        assert f"rule {rule}:" in out or f"localrule {rule}:" in out, rule


@pytest.mark.parametrize("profile", ["ci", "paper", "paper-night", "slurm"])
def test_profile_dry_runs(snakemake, repo, profile):
    result = snakemake("-n", "--profile", str(repo / "profiles" / profile))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "train_chunk" in out and "log_runs" in out


def test_workflow_profile_keeps_the_scheduler_event_driven(repo):
    """Snakemake's job rate limiter re-arms a timer of its window on every scheduler pass, one more
    timer chain per finished job; with the default 1-s window the scheduler of `make reproduce` ended
    up re-evaluating every waiting job over a hundred times a second. The workflow profile's limit
    must never bind (16 cores finishing a 1-s dataset job each per second stay below it) and its
    window must be long; the Snakefile cancels the timers left at the end (test_scheduler.py)."""
    from snakemake.settings.types import MaxJobsPerTimespan

    settings = yaml.safe_load((repo / "profiles" / "default" / "config.yaml").read_text())
    limit = MaxJobsPerTimespan.parse_choice(settings["max-jobs-per-timespan"])
    assert limit.timespan >= 60 and limit.max_jobs >= 16 * limit.timespan


def test_bad_config_stops_before_any_job(snakemake, tmp_path):
    result = snakemake("--cores", "1", "--config", "chunk_size=0")
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "chunk_size" in out and "invalid pipeline config" in out
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "results").exists()


def test_bad_science_key_stops_before_any_job(snakemake, tmp_path):
    result = snakemake("--cores", "1", "--config", "science={pde: {kan_stepz: fast}}")
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "science.pde" in out and "'kan_stepz'" in out
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "results").exists()


def test_a_number_inside_a_mapping_on_the_command_line_is_named_as_text(snakemake, tmp_path):
    """Snakemake's --config passes the values inside a mapping as strings: the error says so."""
    result = snakemake("--cores", "1", "--config", "science={pde: {kan_steps: 5}}")
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "at science.pde.kan_steps: '5' arrived as text" in out and "--configfile" in out
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "results").exists()


def _planned_jobs(out: str) -> list[dict[str, str]]:
    """Each job of a dry run's output as ``{"rule": ..., "input": ..., "output": ..., ...}``."""
    jobs: list[dict[str, str]] = []
    for line in out.splitlines():
        if line.startswith(("rule ", "localrule ")):
            jobs.append({"rule": line.split()[1].rstrip(":")})
        elif jobs and line.startswith("    ") and ": " in line:
            key, value = line.strip().split(": ", 1)
            jobs[-1][key] = value
    return jobs


def test_default_dry_run_generates_the_science_datasets(snakemake, repo):
    """The knot table and the Anderson states are generate_dataset jobs, and exactly the inputs of
    the knots / localization science jobs (what the configured settings read)."""
    from kan.pipeline.config import load_yaml
    from kan.science.registry import datasets

    result = snakemake("-n")
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = _planned_jobs(result.stdout + result.stderr)
    generated = {job["output"] for job in jobs if job["rule"] == "generate_dataset"}
    science = {job["wildcards"]: job.get("input", "") for job in jobs if job["rule"] == "science"}
    settings = load_yaml(repo / "workflow" / "config" / "default.yaml")["science"]
    for name, family in (("knots", "knot"), ("localization", "anderson")):
        folders = {f"datasets/generated/{r.key}" for r in datasets(name, settings[name])}
        assert folders and all(f.startswith(f"datasets/generated/{family}/") for f in folders), folders
        assert folders <= generated, name
        assert set(science[f"name={name}"].split(", ")) == folders, name


def test_the_knot_table_is_downloaded_before_the_knot_dataset_is_made(snakemake):
    """With science.knots.download (default profile), the knot dataset reads the download folder."""
    from kan.data.knot_download import DOWNLOAD_DIR

    result = snakemake("-n")
    jobs = _planned_jobs(result.stdout + result.stderr)
    (download,) = [job for job in jobs if job["rule"] == "download_knots"]
    assert download["output"] == DOWNLOAD_DIR
    knot = next(job for job in jobs if job["rule"] == "generate_dataset" and job["output"].endswith("knot/deepmind"))
    assert knot.get("input") == DOWNLOAD_DIR


@pytest.mark.parametrize("shard", ["3/8", "10/54,41/54"])
def test_paper_shard_plans_its_own_chunks_and_science_only(snakemake, repo, load, shard):
    """`make paper-shard SHARD=k/N`: the shard target plans the train chunks and science jobs of
    shard k (kan.records.shards: whole datasets) and the datasets they read, nothing downstream;
    `make paper-rest` gives several shards, comma-separated, through the same config key."""
    from kan.records.shards import in_shard
    from kan.experiments.sweep import chunks, expand

    result = snakemake("shard", "-n", "--profile", str(repo / "profiles" / "paper"), "--config", f"shard={shard}")
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = _planned_jobs(result.stdout + result.stderr)
    rules = {job["rule"] for job in jobs}
    assert rules - {"download_knots"} <= {"generate_dataset", "train_chunk", "science", "shard"}
    assert ("download_knots" in rules) == any(job["wildcards"] == "name=knots" for job in jobs if job["rule"] == "science")
    settings = load(repo / "workflow" / "config" / "paper.yaml")
    names = [*chunks(expand(settings), settings["chunk_size"]), *(f"science:{n}" for n in settings["science"])]
    wanted = in_shard(names, shard)
    planned = {job["wildcards"] for job in jobs if job["rule"] in ("train_chunk", "science")}
    expected = {f"name={n.split(':', 1)[1]}" if n.startswith("science:") else
                "experiment={}, dataset={}, index={}".format(*n.split("/")) for n in wanted}
    assert planned == expected
    levels: dict[str, set[str]] = {}  # one priority per dataset, another for each: datasets complete in turn
    for job in (job for job in jobs if job["rule"] == "train_chunk"):
        levels.setdefault(job["wildcards"].rsplit(", ", 1)[0], set()).add(job["priority"])
    assert len(levels) > 1 and all(len(found) == 1 for found in levels.values())
    assert len({found.pop() for found in levels.values()}) == len(levels)


def test_bad_shard_stops_before_any_job(snakemake, repo):
    result = snakemake("shard", "-n", "--profile", str(repo / "profiles" / "paper"), "--config", "shard=9/8")
    assert result.returncode != 0 and "at shard: shard must be 'k/N'" in result.stdout + result.stderr
    result = snakemake("shard", "-n", "--profile", str(repo / "profiles" / "paper"), "--config", "shard=60/60")
    out = result.stdout + result.stderr  # a well-formed shard beyond the 54 groups used to finish doing nothing
    assert result.returncode != 0 and "config key shard: shard 60/60 selects no job: the profile has 54 groups" in out


def test_a_changed_data_generator_regenerates_its_datasets(repo, tmp_path):
    """The data rule's parameters include the digest of the family's generator source: a fixed range
    or formula regenerates its datasets instead of leaving the old data to be trained on as current."""
    work, other, changed = tmp_path / "work", tmp_path / "other", tmp_path / "changed"
    for copy, module in ((other, "feynman.py"), (changed, "synthetic.py")):
        shutil.copytree(repo / "src", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        with (copy / "kan" / "data" / module).open("a", encoding="utf-8") as source:
            source.write("# an edit of the generator\n")

    def run(*args: str, src: Path) -> str:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"PYTHONPATH": str(src)}
        command = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(work),
                   "--profile", str(repo / "profiles" / "ci"), "--cores", "1", *args, "datasets/generated/synthetic/xy"]
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    run(src=repo / "src")
    assert "Nothing to be done" in run("-n", src=repo / "src")
    assert "Nothing to be done" in run("-n", src=other)  # another family's generator: xy stays
    planned = run("-n", src=changed)
    assert "rule generate_dataset:" in planned and "Params have changed" in planned, planned
