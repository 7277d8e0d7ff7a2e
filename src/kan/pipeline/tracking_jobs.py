"""The MLflow jobs: create the store, log the training runs with their figures, log the
science experiments (see :mod:`kan.pipeline.tracking`)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Sequence

import matplotlib

from kan import KAN
from kan.experiments.runner import load_dataset, load_run_model
from kan.pipeline import tracking
from kan.pipeline.joblog import write_json
from kan.plot import plot_history, plot_kan
from kan.records.aggregate import manifest_runs
from kan.records.runfiles import read_history, read_metrics
from kan.records.science_outputs import read_run_record

log = logging.getLogger(__name__)


def init_tracking(uri: str, experiment: str, artifacts: Path | str | None, marker: Path | str) -> None:
    """Create the MLflow store and experiment (a new experiment keeps its artifacts in
    ``artifacts``; None: the server's default); record what was found in ``marker``."""
    description = ("KAN paper reproduction (arXiv 2404.19756): one run per grid phase of every training, the earlier "
                   "phases nested under the training's longest run (which holds every step's metrics; they keep their last "
                   "step's), and one run per science experiment. The per-run "
                   "files in results/runs and results/science are the source of truth; report: reports/paper_vs_ours.md.")
    experiment_id = tracking.init_tracking(uri, experiment, artifacts, description)
    log.info("MLflow experiment %s (id %s) at %s", experiment, experiment_id, uri)
    write_json(marker, {"uri": uri, "experiment": experiment, "experiment_id": experiment_id})


def _figures(run_dir: Path, out_dir: Path, dataset_root: Path) -> list[Path]:
    """KAN diagram (KANs only) and training curves of one run, written to ``out_dir``."""
    metrics = read_metrics(run_dir)
    paths = [out_dir / "curves.png"]
    plot_history(read_history(run_dir).to_dict("records"), paths[0])
    model = load_run_model(run_dir)
    if isinstance(model, KAN):
        data, meta = load_dataset(dataset_root / metrics["family"] / metrics["dataset"], metrics["config"]["dtype"])
        paths.append(out_dir / "diagram.png")
        plot_kan(model, data["train_input"], paths[-1], input_names=meta["inputs"], output_names=meta["targets"])
    return paths


_RECREATE = "recreate it with `snakemake --forcerun tracking_store`"


def _tracking_store(uri: str, experiment: str) -> tuple[Any, str, dict[str, tuple[str, str]]]:
    """(client, experiment id, runs already logged) of the store the tracking_store rule created."""
    database = tracking.sqlite_path(uri)
    if database is not None and not database.is_file():
        raise FileNotFoundError(f"{database} is missing; {_RECREATE}")
    mlflow = tracking.client(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage != "active":
        state = "has no" if found is None else "has only a deleted"
        raise ValueError(f"the MLflow store at {uri} {state} experiment {experiment!r} (config key tracking.experiment); "
                         f"{_RECREATE}")
    return mlflow, found.experiment_id, tracking.logged_runs(mlflow, found.experiment_id)


def log_runs(uri: str, experiment: str, manifests: Sequence[Path | str], diagrams: str,
             dataset_root: Path | str, out: Path | str, sweep: str, configured: Sequence[str]) -> None:
    """Log every run listed by ``manifests`` (those of pipeline experiment ``sweep``) to MLflow
    (idempotent) and retire the MLflow runs of ``sweep`` they no longer list
    (:func:`kan.pipeline.tracking.retire_runs`) and those of experiments not in ``configured``
    (the config's pipeline experiments); ``diagrams`` is ``all``, ``final`` (only each training's
    last run) or ``none``."""
    matplotlib.use("Agg")
    mlflow, experiment_id, known = _tracking_store(uri, experiment)
    with tempfile.TemporaryDirectory() as tmp:
        def figures(run_dir: Path) -> list[Path]:
            wanted = diagrams == "all" or (diagrams == "final" and read_metrics(run_dir).get("final_stage", True))
            out = Path(tmp) / run_dir.name
            out.mkdir()
            return _figures(run_dir, out, Path(dataset_root)) if wanted else []

        logged = tracking.log_trainings(mlflow, experiment_id, manifest_runs(manifests), known, figures, Path(dataset_root))
    retired = tracking.retire_runs(mlflow, experiment_id, sweep, logged)
    retired += tracking.retire_dropped_experiments(mlflow, experiment_id, configured)
    log.info("%d runs in MLflow experiment %s (%s); %d no longer on disk or in the config deleted", len(logged),
             experiment, uri, len(retired))
    write_json(out, {"uri": uri, "experiment": experiment, "runs": logged})


def log_science(uri: str, experiment: str, result_dirs: Sequence[Path | str], out: Path | str) -> None:
    """Log every science experiment folder to MLflow (idempotent, see :func:`kan.pipeline.tracking.log_science_run`)
    and retire the science runs of other settings or experiments."""
    mlflow, experiment_id, known = _tracking_store(uri, experiment)
    logged = {Path(d).name: tracking.log_science_run(mlflow, experiment_id, d, known) for d in result_dirs}
    retired = tracking.retire_science_runs(mlflow, experiment_id, [read_run_record(d)["config_id"] for d in result_dirs])
    log.info("%d science runs in MLflow experiment %s (%s); %d of earlier settings or experiments deleted",
             len(logged), experiment, uri, len(retired))
    write_json(out, {"uri": uri, "experiment": experiment, "runs": logged})
