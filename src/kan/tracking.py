"""MLflow tracking: create the store once, then log finished runs (and science experiments)
from their files.

MLflow is a view for humans; the per-run files stay the source of truth and nothing is
ever read back from MLflow into results. Logging is idempotent: a run is found by its
``config_id`` tag; unchanged files are skipped, changed files replace the old MLflow run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from kan.experiments.runfiles import HISTORY, METRICS, MODEL, read_history, read_metrics

if TYPE_CHECKING:  # mlflow is imported lazily: resolving a URI must not pay its import cost
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Metric

EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
TAG_KEYS = ("experiment", "family", "dataset", "model", "variant", "shape", "status", "profile", "git_commit", "machine",
            "code_fingerprint", "training_id")
STEP_METRICS = ("train_rmse", "test_rmse", "train_loss", "test_loss", "regularization", "grid", "train_accuracy", "test_accuracy")
SUMMARY_METRICS = ("n_params", "steps", "seconds", "grid", "depth", "lamb")
SCIENCE_TAG_KEYS = ("experiment", "family", "dataset", "model", "section", "status", "profile", "git_commit", "machine",
                    "code_fingerprint", "config_id")
_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_PARAM_BATCH = 100


def client(uri: str) -> "MlflowClient":
    """An MLflow client for ``uri``, with telemetry off."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def tracking_uri(configured: str, results: Path | str) -> str:
    """The configured URI, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<abs results>/mlflow.db``."""
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path(results) / 'mlflow.db').resolve()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]) if uri.startswith(prefix) else None


def init_tracking(uri: str, experiment: str, artifact_root: Path | str | None) -> str:
    """Create (or find) the experiment, tagged so the UI opens on its training runs; return its id.

    For a SQLite store this creates the database: call it from one process only.
    ``artifact_root`` is used for a new experiment on a local store (None: the server's default).
    """
    mlflow = client(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        for key, value in EXPERIMENT_KIND.items():
            mlflow.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id
    location = Path(artifact_root).resolve().as_uri() if artifact_root is not None else None
    return mlflow.create_experiment(experiment, artifact_location=location, tags=EXPERIMENT_KIND)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config as flat ``a.b.c`` -> text parameters."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = json.dumps(value) if not isinstance(value, str) else value
    return flat


TIMING_KEYS = ("seconds", "cpu_seconds")  # wall and CPU time: differ between identical reruns


def _digest_bytes(path: Path) -> bytes:
    """A file's bytes for the digest; JSON records without their timing keys (canonical form)."""
    if path.suffix != ".json":
        return path.read_bytes()
    record = {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if k not in TIMING_KEYS}
    return json.dumps(record, sort_keys=True).encode("utf-8")


def files_digest(run_dir: Path | str, names: Iterable[str] = (METRICS, HISTORY)) -> str:
    """sha256 over the named files of a run folder (by default its metrics and history), timing
    left out: changes exactly when a rerun changed a result, not when it only took another time."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(_digest_bytes(Path(run_dir) / name))
    return digest.hexdigest()


def logged_runs(mlflow: "MlflowClient", experiment_id: str) -> dict[str, tuple[str, str]]:
    """config_id -> (MLflow run id, files digest) of the experiment's active runs."""
    from mlflow.entities import ViewType

    found: dict[str, tuple[str, str]] = {}
    token = None
    while True:
        page = mlflow.search_runs([experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=5000, page_token=token)
        for run in page:
            tags = run.data.tags
            if "config_id" in tags:
                found[tags["config_id"]] = (run.info.run_id, tags.get("files_digest", ""))
        token = page.token
        if not token:
            return found


def _current_run(mlflow: "MlflowClient", known: Mapping[str, tuple[str, str]], config_id: str, digest: str) -> str | None:
    """The MLflow run of ``config_id`` when it was logged from the same files (``digest``);
    otherwise delete any outdated run of that id and return None."""
    previous = known.get(config_id)
    if previous and previous[1] == digest:
        return previous[0]
    if previous:
        mlflow.delete_run(previous[0])
    return None


def _log_params(mlflow: "MlflowClient", run_id: str, config: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    params = [Param(k, v[:6000]) for k, v in flatten(config).items()]
    for start in range(0, len(params), _PARAM_BATCH):
        mlflow.log_batch(run_id, params=params[start:start + _PARAM_BATCH])


def _log_metrics(mlflow: "MlflowClient", run_id: str, values: list["Metric"]) -> None:
    for start in range(0, len(values), _BATCH):
        mlflow.log_batch(run_id, metrics=values[start:start + _BATCH])


def _metrics(metrics: Mapping[str, Any], history: Any) -> list["Metric"]:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    out = []
    for column in [c for c in STEP_METRICS if c in history.columns]:
        for step, value in zip(history["step"], history[column]):
            if value == value:  # skip NaN
                out.append(Metric(column, float(value), now, int(step)))
    last = int(history["step"].iloc[-1]) if len(history) else 0
    for key in SUMMARY_METRICS:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and value == value:
            out.append(Metric(f"final_{key}", float(value), now, last))
    return out


def log_record(mlflow: "MlflowClient", experiment_id: str, metrics: Mapping[str, Any], history: "pd.DataFrame",
               digest: str, known: Mapping[str, tuple[str, str]], artifacts: Iterable[Path] = ()) -> str:
    """Log one run's record (tags, params, per-step and final metrics, artifacts) unless a run of
    its config id was logged from the same content (``digest``); return the MLflow run id."""
    current = _current_run(mlflow, known, metrics["run_id"], digest)
    if current:
        return current
    tags = {key: str(metrics.get(key, "")) for key in TAG_KEYS}
    tags |= {"config_id": metrics["run_id"], "files_digest": digest, "final_stage": str(metrics.get("final_stage", True))}
    name = f"{metrics['experiment']}/{metrics['dataset']}/{metrics['variant']}/{metrics['shape']}/G{metrics['grid']}/s{metrics['seed']}"
    run_id = mlflow.create_run(experiment_id, tags=tags, run_name=name).info.run_id
    _log_params(mlflow, run_id, metrics["config"])
    _log_metrics(mlflow, run_id, _metrics(metrics, history))
    for path in artifacts:
        mlflow.log_artifact(run_id, str(path))
    mlflow.set_terminated(run_id, "FINISHED" if metrics["status"] in ("ok", "early_stopped") else "FAILED")
    return run_id


def log_run(mlflow: "MlflowClient", experiment_id: str, run_dir: Path | str, known: Mapping[str, tuple[str, str]],
            artifacts: Iterable[Path] = ()) -> str:
    """Log one run folder (its record, model state and ``artifacts``) unless it is already logged
    unchanged; return the MLflow run id."""
    run_dir = Path(run_dir)
    return log_record(mlflow, experiment_id, read_metrics(run_dir), read_history(run_dir), files_digest(run_dir), known,
                      [run_dir / METRICS, run_dir / MODEL, *artifacts])


def log_science_run(mlflow: "MlflowClient", experiment_id: str, result_dir: Path | str,
                    known: Mapping[str, tuple[str, str]]) -> str:
    """Log one science experiment's folder (tags and settings from its run record, its summary as
    metrics, figures, tables and both JSON files as artifacts) unless it is already logged
    unchanged; return the MLflow run id."""
    from mlflow.entities import Metric

    from kan.science.outputs import FIGURES, RUN_RECORD, SUMMARY, TABLES, read_run_record, read_summary

    result_dir = Path(result_dir)
    record = read_run_record(result_dir)
    digest = files_digest(result_dir, (SUMMARY, RUN_RECORD))
    current = _current_run(mlflow, known, record["config_id"], digest)
    if current:
        return current
    tags = {key: str(record.get(key, "")) for key in SCIENCE_TAG_KEYS}
    tags |= {"variant": "science", "files_digest": digest}
    run_id = mlflow.create_run(experiment_id, tags=tags, run_name=f"science/{record['experiment']}").info.run_id
    _log_params(mlflow, run_id, record["settings"])
    now = int(time.time() * 1000)
    _log_metrics(mlflow, run_id, [Metric(k, v, now, 0) for k, v in read_summary(result_dir).items() if v == v])
    for path in (result_dir / SUMMARY, result_dir / RUN_RECORD):
        mlflow.log_artifact(run_id, str(path))
    for folder in (FIGURES, TABLES):
        if (result_dir / folder).is_dir():  # published records keep tables, not figures
            mlflow.log_artifacts(run_id, str(result_dir / folder), folder)
    mlflow.set_terminated(run_id, "FINISHED")
    return run_id


def load_published(uri: str, experiment: str, records: Path | str) -> int:
    """Log published records (:mod:`kan.experiments.publish`) to the store at ``uri``: every run
    with its (thinned) history up to its own last step, and every science experiment; runs already
    logged unchanged are skipped. Returns the number of runs in the records."""
    import pandas as pd

    from kan.experiments.publish import HISTORIES, RUNS, SCIENCE

    records = Path(records)
    runs = pd.read_parquet(records / RUNS)
    histories = pd.read_parquet(records / HISTORIES)
    longest = runs.sort_values("steps", kind="stable").groupby("training_id")["run_id"].last().to_dict()
    by_run = dict(tuple(histories.groupby("run_id")))
    experiment_id = init_tracking(uri, experiment, None)
    mlflow = client(uri)
    known = logged_runs(mlflow, experiment_id)
    for record in runs.to_dict("records"):
        metrics = {**record, "config": json.loads(record["config"])}
        history = by_run.get(longest[record["training_id"]], histories.iloc[:0])
        history = history[history["step"] <= record["steps"]]
        digest = hashlib.sha256(json.dumps({k: v for k, v in record.items() if k not in TIMING_KEYS}, sort_keys=True,
                                           default=str).encode("utf-8")).hexdigest()
        log_record(mlflow, experiment_id, metrics, history, digest, known)
    for folder in sorted(d for d in (records / SCIENCE).glob("*") if d.is_dir()):
        log_science_run(mlflow, experiment_id, folder, known)
    return len(runs)
