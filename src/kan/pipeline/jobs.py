"""One function per pipeline job that needs more than a single library call; the
Snakemake scripts in ``workflow/scripts`` only pass their inputs, outputs and params here.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

from kan import KAN
from kan.data import with_requests
from kan.experiments.pruning import DEVIATION
from kan.experiments.progress import current_trainings
from kan.experiments.runner import load_dataset, load_run_model, train_chunk
from kan.experiments.sweep import Training, datasets_used
from kan.pipeline import tracking
from kan.pipeline.joblog import write_json
from kan.plot import plot_history, plot_kan
from kan.records.aggregate import manifest_runs
from kan.records.provenance import FINGERPRINT, code_fingerprint, git_commit, machine_kind
from kan.records.runfiles import read_history, read_metrics
from kan.records.science_outputs import FIGURES
from kan.science import registry

log = logging.getLogger(__name__)


def train(trainings: Sequence[Mapping[str, Any]], dataset_dirs: Mapping[str, str], results: Path | str,
          manifest: Path | str, profile: str, published: Path | str | None = None) -> None:
    """Train a chunk (see :func:`kan.experiments.runner.train_chunk`) and write its manifest.

    ``dataset_dirs`` maps ``"<family>/<name>"`` to the dataset folder; trainings with a current
    record in the records folder ``published`` (config key ``published``) are not trained again.
    """
    dirs = {tuple(key.split("/", 1)): Path(path) for key, path in dataset_dirs.items()}
    extra = {"profile": profile, "git_commit": git_commit(), "machine": machine_kind(),
             FINGERPRINT: code_fingerprint()}
    chunk = [Training.from_dict(t) for t in trainings]
    outcome = train_chunk(chunk, dirs, results, extra, current_trainings(chunk, published) if published else ())
    log.info("chunk done: %d trainings, %d trained now, %d published, %d runs", outcome["trainings"],
             outcome["trained"], outcome["published"], len(outcome["runs"]))
    write_json(manifest, outcome)


def init_tracking(uri: str, experiment: str, artifacts: Path | str | None, marker: Path | str) -> None:
    """Create the MLflow store and experiment (a new experiment keeps its artifacts in
    ``artifacts``; None: the server's default); record what was found in ``marker``."""
    description = ("KAN paper reproduction (arXiv 2404.19756): one run per grid phase of every training, the earlier "
                   "phases nested under the training's longest run, and one run per science experiment. The per-run "
                   "files in results/runs and results/science are the source of truth; report: reports/paper_vs_ours.md.")
    experiment_id = tracking.init_tracking(uri, experiment, artifacts, description)
    log.info("MLflow experiment %s (id %s) at %s", experiment, experiment_id, uri)
    write_json(marker, {"uri": uri, "experiment": experiment, "experiment_id": experiment_id})


def science_requests(settings: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Per configured science experiment, the datasets it reads (kan.science.registry.datasets)."""
    if not settings["science"]:
        return {}
    return {name: registry.datasets(name, options) for name, options in settings["science"].items()}


def profile_datasets(trainings: Sequence[Any], requests: Mapping[str, Sequence[Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(family, name) -> {"spec", "seed"} of every dataset folder a profile writes: those its
    trainings use and those its science experiments read (``requests``, see :func:`science_requests`)."""
    return with_requests(datasets_used(list(trainings)), [r for found in requests.values() for r in found])


def report_deviations(profile_deviations: Sequence[str], dataset_dirs: Sequence[Path | str]) -> list[str]:
    """Every deviation from the paper, once: the profile's, the pruning procedure's, and
    those recorded in the datasets' meta.json."""
    found = [*profile_deviations, DEVIATION]
    for directory in dataset_dirs:
        meta = json.loads((Path(directory) / "meta.json").read_text(encoding="utf-8"))
        found += [f"{meta['family']}/{meta['name']}: {text}" for text in meta.get("deviations", [])]
    return list(dict.fromkeys(found))


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


def _tracking_store(uri: str, experiment: str) -> tuple[Any, str, dict[str, tuple[str, str]]]:
    """(client, experiment id, runs already logged) of the store the tracking_store rule created."""
    database = tracking.sqlite_path(uri)
    if database is not None and not database.is_file():
        raise FileNotFoundError(f"{database} is missing; recreate it with `snakemake --forcerun tracking_store`")
    mlflow = tracking.client(uri)
    experiment_id = mlflow.get_experiment_by_name(experiment).experiment_id
    return mlflow, experiment_id, tracking.logged_runs(mlflow, experiment_id)


def log_runs(uri: str, experiment: str, manifests: Sequence[Path | str], diagrams: str,
             dataset_root: Path | str, out: Path | str, sweep: str) -> None:
    """Log every run listed by ``manifests`` (those of pipeline experiment ``sweep``) to MLflow
    (idempotent) and retire the MLflow runs of ``sweep`` they no longer list
    (:func:`kan.pipeline.tracking.retire_runs`); ``diagrams`` is ``all``, ``final`` (only each
    training's last run) or ``none``."""
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
    log.info("%d runs in MLflow experiment %s (%s); %d no longer on disk or in the config deleted", len(logged),
             experiment, uri, len(retired))
    write_json(out, {"uri": uri, "experiment": experiment, "runs": logged})


def run_science(name: str, settings: Mapping[str, Any], out_dir: Path | str, figures_dir: Path | str, profile: str,
                datasets: Mapping[str, str] | None = None) -> None:
    """Run science experiment ``name`` into ``out_dir`` (:func:`kan.science.registry.run_recorded`)
    on the dataset folders ``datasets`` ("<family>/<name>" -> folder; None: generated in memory)
    and copy its figures to ``figures_dir`` for the reports. A resumable experiment keeps its
    finished stages under :func:`science_partial_dir` until it is done."""
    summary = registry.run_recorded(name, settings, out_dir, profile, datasets, science_partial_dir(out_dir))
    log.info("science %s: %s", name, summary)
    Path(figures_dir).mkdir(parents=True, exist_ok=True)
    for figure in sorted((Path(out_dir) / FIGURES).glob("*.png")):
        shutil.copy2(figure, Path(figures_dir) / figure.name)


def science_partial_dir(out_dir: Path | str) -> Path:
    """Where the experiment writing ``<results>/science/<name>`` keeps its finished stages:
    ``<results>/partial/science/<name>``, outside the job's output, which Snakemake deletes before
    it reruns a job."""
    out_dir = Path(out_dir)
    if out_dir.parent.name != "science" or len(out_dir.parts) < 3:
        raise ValueError(f"a science experiment writes <results>/science/<name>, got {out_dir}")
    return out_dir.parents[1] / "partial" / "science" / out_dir.name


def log_science(uri: str, experiment: str, result_dirs: Sequence[Path | str], out: Path | str) -> None:
    """Log every science experiment folder to MLflow (idempotent, see :func:`kan.pipeline.tracking.log_science_run`)."""
    mlflow, experiment_id, known = _tracking_store(uri, experiment)
    logged = {Path(d).name: tracking.log_science_run(mlflow, experiment_id, d, known) for d in result_dirs}
    log.info("%d science runs in MLflow experiment %s (%s)", len(logged), experiment, uri)
    write_json(out, {"uri": uri, "experiment": experiment, "runs": logged})
