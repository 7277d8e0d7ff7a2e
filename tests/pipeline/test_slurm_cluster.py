"""The ci profile through profiles/slurm on a real single-node SLURM cluster started on this
machine (scripts/slurm_local_cluster.sh), logging to an MLflow tracking server. Skipped, with the
reason, where such a cluster cannot start (no root, no slurm-wlm/munge packages)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from kan.pipeline.regression import compare_expected, rows_for_machine
from kan.records.provenance import machine_kind

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_local_cluster.sh"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """SLURM_CONF of a running single-node cluster, stopped after the module."""
    if os.geteuid() != 0:
        pytest.skip("a local SLURM cluster needs root (munged, slurmctld, slurmd)")
    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no {', '.join(missing)}: apt-get install -y --no-install-recommends slurm-wlm munge")
    folder = tmp_path_factory.mktemp("slurm")
    started = subprocess.run([str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        pytest.skip(f"the local SLURM cluster did not start: {started.stderr.strip()[-500:]}")
    yield started.stdout.strip().split("=", 1)[1]
    subprocess.run([str(SCRIPT), "stop", str(folder)], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """URI of an MLflow tracking server on a free loopback port."""
    folder = tmp_path_factory.mktemp("mlflow")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                               "--default-artifact-root", str(folder / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            break
        except OSError:
            time.sleep(1)
    else:
        server.kill()
        pytest.skip("the MLflow tracking server did not start")
    yield uri
    server.terminate()
    server.wait(timeout=30)


def test_the_ci_profile_runs_on_slurm_and_logs_to_a_tracking_server(cluster, tracking_server, tmp_path):
    env = {**os.environ, "SLURM_CONF": cluster, "MLFLOW_TRACKING_URI": tracking_server}
    work = tmp_path / "work"
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
               "--profile", str(ROOT / "profiles" / "slurm"), "--configfile", str(ROOT / "workflow" / "config" / "ci.yaml"),
               "--slurm-status-command", "squeue", "--jobs", "4"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    submitted = (result.stdout + result.stderr).count("has been submitted with SLURM jobid")
    states = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%T"], env=env, capture_output=True, text=True).stdout.split()
    assert submitted >= 20 and states.count("COMPLETED") >= 20, f"the jobs did not go through SLURM: {states}"
    runs = pd.read_csv(work / "results" / "tables" / "runs.csv")
    expected, _ = rows_for_machine(pd.read_csv(ROOT / "reports" / "reference" / "ci_expected.csv"), machine_kind())
    assert compare_expected(runs, expected, None) == []  # the same runs, shapes, steps and statuses

    from kan.pipeline.tracking import client, logged_runs

    mlflow = client(tracking_server)
    experiment = mlflow.get_experiment_by_name("kan-ci")
    assert set(runs["run_id"]) <= set(logged_runs(mlflow, experiment.experiment_id))
