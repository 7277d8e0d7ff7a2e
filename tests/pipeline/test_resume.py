"""Resuming after a kill: the stale snakemake lock is removed only when no run is active."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kan.pipeline.science_jobs import science_partial_dir
from kan.pipeline.resume import LOCKS, active_runs, unlock_if_idle


def _fake_process(proc: Path, pid: int, argv: list[str], cwd: Path) -> None:
    entry = proc / str(pid)
    entry.mkdir(parents=True)
    (entry / "cmdline").write_bytes("\0".join(argv).encode() + b"\0")
    os.symlink(cwd, entry / "cwd")


def test_active_runs_are_snakemake_processes_working_in_the_directory(tmp_path):
    work, other, proc = tmp_path / "work", tmp_path / "other", tmp_path / "proc"
    work.mkdir(), other.mkdir()
    _fake_process(proc, 101, [".venv/bin/python3", ".venv/bin/snakemake", "--cores", "2"], work)
    _fake_process(proc, 102, ["python", "-m", "snakemake", "--directory", "../work", "-n"], other)
    _fake_process(proc, 103, [".venv/bin/snakemake", "--cores", "2"], other)  # another directory
    _fake_process(proc, 104, ["python", ".snakemake/scripts/tmp.train_chunk.py"], work)  # a job, not a run
    (proc / "self").mkdir()
    assert active_runs(work, proc) == [101, 102]
    assert active_runs(other, proc) == [103]


def test_unlock_refuses_while_a_run_is_active(tmp_path):
    proc = tmp_path / "proc"
    _fake_process(proc, 101, ["snakemake", "--cores", "1"], tmp_path)
    (tmp_path / LOCKS).mkdir(parents=True)
    (tmp_path / LOCKS / "0.input.lock").write_text("x")
    with pytest.raises(RuntimeError, match=r"snakemake is running in .* \(pid 101\); not unlocking"):
        unlock_if_idle(tmp_path, "Snakefile", proc)
    assert (tmp_path / LOCKS / "0.input.lock").exists()


def test_resume_after_a_kill_removes_the_stale_lock_and_snakemake_runs_again(repo, tmp_path):
    """A lock left by a killed run stops the next one (LockException); `kan unlock` removes it
    when nothing runs there, and the dry run goes through."""
    target = "datasets/generated/synthetic/xy"  # one cheap job of the ci profile
    command = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(tmp_path),
               "--profile", str(repo / "profiles" / "ci"), "--cores", "1", target]
    (tmp_path / LOCKS).mkdir(parents=True)
    (tmp_path / LOCKS / "0.output.lock").write_text(target + "\n")  # as a killed run leaves it
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)

    locked = run()
    assert locked.returncode != 0 and "LockException" in locked.stdout + locked.stderr
    assert "removed the stale lock" in unlock_if_idle(tmp_path, repo / "Snakefile")
    assert not any((tmp_path / LOCKS).glob("*"))
    resumed = run()
    assert resumed.returncode == 0 and (tmp_path / target / "meta.json").is_file(), resumed.stdout + resumed.stderr


def test_kan_unlock_command(tmp_path, capsys):
    from kan.pipeline.cli import main

    assert main(["unlock", "--directory", str(tmp_path)]) == 0
    assert "no lock to remove" in capsys.readouterr().out


@pytest.mark.parametrize("flags", [
    ["--directory=../work"], ["--directory", "../work"], ["-d../work"], ["-d", "../work"],
    ["--dir", "../work"], ["--direct=../work"],  # argparse takes unique prefixes of --directory
    ["-d", "../other", "--directory=../work"],  # the last one wins, as in argparse
])
def test_every_spelling_of_the_directory_flag_is_recognised(tmp_path, flags):
    """`snakemake --directory=paper-run` (or -dpaper-run) is a live run of paper-run: unlocking it
    would remove that run's lock."""
    work, other, proc = tmp_path / "work", tmp_path / "other", tmp_path / "proc"
    work.mkdir(), other.mkdir()
    _fake_process(proc, 201, [".venv/bin/python", ".venv/bin/snakemake", "--cores", "2", *flags], other)
    assert active_runs(work, proc) == [201]
    assert active_runs(other, proc) == []


@pytest.mark.parametrize("argv", [
    ["snakemake", "--dry-run"], ["snakemake", "-n", "--directory"], ["snakemake", "--d", "x"],  # --d: ambiguous
])
def test_flags_that_only_look_like_the_directory_flag_keep_the_cwd(tmp_path, argv):
    proc = tmp_path / "proc"
    _fake_process(proc, 301, argv, tmp_path)
    assert active_runs(tmp_path, proc) == [301]


def test_science_stages_are_kept_beside_the_results_outside_the_job_output(tmp_path):
    out = tmp_path / "results" / "science" / "knots"
    assert science_partial_dir(out) == tmp_path / "results" / "partial" / "science" / "knots"
    assert science_partial_dir("results/science/pde") == Path("results/partial/science/pde")
    with pytest.raises(ValueError, match="<results>/science/<name>, got results/knots"):
        science_partial_dir("results/knots")
