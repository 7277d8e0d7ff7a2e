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
import shutil
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import pandas as pd

from kan.records.publish import HISTORIES, RUNS, SCIENCE
from kan.records.runfiles import HISTORY, METRICS, MODEL, longest_first, read_history, read_metrics
from kan.records.science_outputs import FIGURES, RUN_RECORD, SUMMARY, TABLES, read_run_record, read_summary

if TYPE_CHECKING:  # mlflow is imported where used: resolving a URI must not pay its import cost
    from mlflow import MlflowClient
    from mlflow.entities import Metric

EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
NOTE, PARENT = "mlflow.note.content", "mlflow.parentRunId"  # the UI's description and nesting tags
COMPLETE = ("FINISHED", "FAILED")  # set last: a run killed while being logged stays RUNNING
TAG_KEYS = ("experiment", "family", "dataset", "model", "variant", "shape", "status", "profile", "git_commit", "machine",
            "code_fingerprint", "training_id")
STEP_METRICS = ("train_rmse", "test_rmse", "train_loss", "test_loss", "regularization", "grid", "train_accuracy", "test_accuracy")
SUMMARY_METRICS = ("n_params", "steps", "seconds", "grid", "depth", "lamb")
SCIENCE_TAG_KEYS = ("experiment", "family", "dataset", "model", "section", "status", "profile", "git_commit", "machine",
                    "code_fingerprint", "config_id")
_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_PARAM_BATCH = 100


def client(uri: str) -> "MlflowClient":
    """An MLflow client for ``uri``, with telemetry off; a SQLite store commits without waiting
    for the disk (:func:`_unsynced_sqlite`)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient  # deferred: mlflow is slow to import

    if sqlite_path(uri):
        _unsynced_sqlite()
    return MlflowClient(tracking_uri=uri)


def _unsynced_sqlite() -> None:
    """Open every SQLite connection of this process with ``PRAGMA synchronous=OFF``.

    Logging commits thousands of small transactions, and an fsync per commit made the logging
    jobs wait on the disk for much of their time. A killed process cannot corrupt the store (the
    rollback journal is still written); an operating-system crash or power loss while logging
    can, and then the store is rebuilt from the run files, the source of truth."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _without_sync):
        event.listen(Engine, "connect", _without_sync)


def _without_sync(connection: Any, _record: Any) -> None:
    if isinstance(connection, sqlite3.Connection):
        connection.execute("PRAGMA synchronous=OFF")


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


def forget_lost_store(uri: str, markers: Path | str) -> bool:
    """Remove the folder of the pipeline's tracking ``markers`` (the store's and the logging jobs')
    when the SQLite database of ``uri`` they vouch for is gone (deleted or moved), so the next run
    recreates the store and logs every run into it again instead of reporting "nothing to be done"
    over an empty store; whether it removed it."""
    database, markers = sqlite_path(uri), Path(markers)
    if database is None or database.is_file() or not markers.is_dir():
        return False
    shutil.rmtree(markers)
    return True


def init_tracking(uri: str, experiment: str, artifact_root: Path | str | None, description: str = "") -> str:
    """Create (or find) the experiment, tagged so the UI opens on its training runs and shows
    ``description`` as its note; return its id.

    For a SQLite store this creates the database: call it from one process only.
    ``artifact_root`` is used for a new experiment on a local store (None: the server's default).
    """
    mlflow = client(uri)
    tags = {**EXPERIMENT_KIND, **({NOTE: description} if description else {})}
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        if found.lifecycle_stage != "active":  # deleted in the UI: its runs come back with it
            mlflow.restore_experiment(found.experiment_id)
        for key, value in tags.items():
            mlflow.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id
    location = Path(artifact_root).resolve().as_uri() if artifact_root is not None else None
    return mlflow.create_experiment(experiment, artifact_location=location, tags=tags)


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


TIMING_KEYS = ("seconds", "cpu_seconds", "finished_at")  # wall and CPU time: differ between identical reruns


def _digest_bytes(path: Path) -> bytes:
    """A file's bytes for the digest; JSON records without their timing keys (canonical form)."""
    if path.suffix != ".json":
        return path.read_bytes()
    return record_bytes(json.loads(path.read_text(encoding="utf-8")))


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """A record's canonical JSON without its timing keys: what a digest of it covers."""
    kept = {k: v for k, v in record.items() if k not in TIMING_KEYS}
    return json.dumps(kept, sort_keys=True, default=str).encode("utf-8")


def files_digest(run_dir: Path | str, names: Iterable[str] = (METRICS, HISTORY)) -> str:
    """sha256 over the named files of a run folder (by default its metrics and history), timing
    left out: changes exactly when a rerun changed a result, not when it only took another time."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(_digest_bytes(Path(run_dir) / name))
    return digest.hexdigest()


def _active_runs(mlflow: "MlflowClient", experiment_id: str, filter_string: str = "") -> Iterator[Any]:
    """The experiment's active MLflow runs (matching ``filter_string``), page by page."""
    from mlflow.entities import ViewType  # deferred: mlflow is slow to import

    token = None
    while True:
        page = mlflow.search_runs([experiment_id], filter_string, run_view_type=ViewType.ACTIVE_ONLY, max_results=5000,
                                  page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def logged_runs(mlflow: "MlflowClient", experiment_id: str) -> dict[str, tuple[str, str]]:
    """config_id -> (MLflow run id, files digest) of the experiment's active runs; a run whose
    logging did not finish has digest "" (it is replaced on the next pass)."""
    found: dict[str, tuple[str, str]] = {}
    for run in _active_runs(mlflow, experiment_id):
        tags = run.data.tags
        if "config_id" in tags:
            complete = run.info.status in COMPLETE
            found[tags["config_id"]] = (run.info.run_id, tags.get("files_digest", "") if complete else "")
    return found


def retire_runs(mlflow: "MlflowClient", experiment_id: str, experiment: str, keep: Iterable[str]) -> list[str]:
    """Soft-delete the active training runs of pipeline experiment ``experiment`` (tag) whose
    config id is not in ``keep`` (the run folders just logged): runs whose files are gone or were
    trained under an earlier config would otherwise still show as finished. Science runs are
    left alone. Returns the config ids retired."""
    runs = [r for r in _active_runs(mlflow, experiment_id, f"tags.experiment = '{experiment}'")
            if r.data.tags.get("variant") != "science"]
    return _retire(mlflow, runs, keep)


def retire_dropped_experiments(mlflow: "MlflowClient", experiment_id: str, configured: Iterable[str]) -> list[str]:
    """Soft-delete the active training runs of pipeline experiments (tag ``experiment``) not in
    ``configured``: an experiment dropped from the config would otherwise keep its runs in the
    store, though no report shows them. Science runs and runs the pipeline did not log (no
    ``config_id`` tag) are left alone; the store does the filtering, so the usual case, nothing
    to retire, loads no run. Returns the config ids retired."""
    others = " AND ".join(["tags.variant != 'science'", *(f"tags.experiment != '{name}'" for name in sorted(set(configured)))])
    return _retire(mlflow, [r for r in _active_runs(mlflow, experiment_id, others) if "config_id" in r.data.tags], ())


def retire_science_runs(mlflow: "MlflowClient", experiment_id: str, keep: Iterable[str]) -> list[str]:
    """Soft-delete the active science runs whose config id (the experiment and its settings) is
    not in ``keep`` (the science folders just logged): a run under earlier settings, or of an
    experiment no longer configured. Returns the config ids retired."""
    return _retire(mlflow, list(_active_runs(mlflow, experiment_id, "tags.variant = 'science'")), keep)


def _retire(mlflow: "MlflowClient", runs: Iterable[Any], keep: Iterable[str]) -> list[str]:
    keep, retired = set(keep), []
    for run in runs:
        config_id = run.data.tags.get("config_id")
        if config_id not in keep:
            mlflow.delete_run(run.info.run_id)
            retired.append(config_id or run.info.run_id)
    return retired


def _current_run(mlflow: "MlflowClient", known: Mapping[str, tuple[str, str]], config_id: str, digest: str) -> str | None:
    """The MLflow run of ``config_id`` when it was logged from the same files (``digest``);
    otherwise delete any outdated run of that id and return None."""
    previous = known.get(config_id)
    if previous and previous[1] == digest:
        return previous[0]
    if previous:
        mlflow.delete_run(previous[0])
    return None


def _log_values(mlflow: "MlflowClient", run_id: str, config: Mapping[str, Any], values: list["Metric"]) -> None:
    """Log ``config`` (flattened) as params and ``values`` as metrics, both in the same
    ``log_batch`` calls (each call costs a round of queries, whatever it carries)."""
    from mlflow.entities import Param  # deferred: mlflow is slow to import

    params = [Param(k, v[:6000]) for k, v in flatten(config).items()]
    calls = max(-(-len(params) // _PARAM_BATCH), -(-len(values) // _BATCH))
    for call in range(calls):
        mlflow.log_batch(run_id, params=params[call * _PARAM_BATCH:(call + 1) * _PARAM_BATCH],
                         metrics=values[call * _BATCH:(call + 1) * _BATCH])


def _metrics(metrics: Mapping[str, Any], history: Any) -> list["Metric"]:
    from mlflow.entities import Metric  # deferred: mlflow is slow to import

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


def run_times(record: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(start, end) of the computation a record describes, in ms since the epoch, from its
    ``finished_at`` (epoch seconds) and wall ``seconds``; (None, None) when it has no end time."""
    finished = record.get("finished_at")
    if not isinstance(finished, (int, float)) or finished != finished:
        return None, None
    return int((finished - float(record.get("seconds") or 0.0)) * 1000), int(finished * 1000)


def dataset_digest(meta: Mapping[str, Any]) -> str:
    """16 hex digits naming a dataset folder's content: the sha256 of its files' checksums."""
    return hashlib.sha256(json.dumps(meta["checksums"], sort_keys=True).encode("utf-8")).hexdigest()[:16]


def dataset_input(folder: Path) -> Any:
    """A dataset folder as an MLflow training input: name, content digest, path, schema."""
    from mlflow.entities import Dataset, DatasetInput, InputTag  # deferred: mlflow is slow to import

    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    schema = {key: meta[key] for key in ("inputs", "targets", "n_train", "n_test", "task")}
    dataset = Dataset(name=f"{meta['family']}/{meta['name']}", digest=dataset_digest(meta), source_type="local",
                      source=str(folder.resolve()), schema=json.dumps(schema))
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])


def log_record(mlflow: "MlflowClient", experiment_id: str, metrics: Mapping[str, Any], history: "pd.DataFrame",
               digest: str, known: Mapping[str, tuple[str, str]], artifacts: Callable[[], Iterable[Path]] = tuple,
               dataset: Path | None = None) -> str:
    """Log one run's record (tags, params, per-step and final metrics, the training's own start
    and end, its ``dataset`` folder as input, the files ``artifacts()`` gives) unless a run of its
    config id was logged completely from the same content (``digest``; then ``artifacts`` is not
    called, so figures are drawn only for runs that get logged); return the MLflow run id."""
    current = _current_run(mlflow, known, metrics["run_id"], digest)
    if current:
        return current
    tags = {key: str(metrics.get(key, "")) for key in TAG_KEYS}
    tags |= {"config_id": metrics["run_id"], "files_digest": digest, "final_stage": str(metrics.get("final_stage", True))}
    name = f"{metrics['experiment']}/{metrics['dataset']}/{metrics['variant']}/{metrics['shape']}/G{metrics['grid']}/s{metrics['seed']}"
    start, end = run_times(metrics)
    run_id = mlflow.create_run(experiment_id, start_time=start, tags=tags, run_name=name).info.run_id
    _log_values(mlflow, run_id, metrics["config"], _metrics(metrics, history))
    if dataset is not None:
        mlflow.log_inputs(run_id, datasets=[dataset_input(dataset)])
    for path in artifacts():
        mlflow.log_artifact(run_id, str(path))
    mlflow.set_terminated(run_id, "FINISHED" if metrics["status"] in ("ok", "early_stopped") else "FAILED", end_time=end)
    return run_id


def log_run(mlflow: "MlflowClient", experiment_id: str, run_dir: Path | str, known: Mapping[str, tuple[str, str]],
            figures: Callable[[Path], Iterable[Path]] = lambda run_dir: (), dataset_root: Path | None = None,
            steps: bool = True) -> str:
    """Log one run folder (its record, model state and ``figures(run_dir)``, drawn only if the run
    gets logged; its dataset when ``dataset_root`` holds it) unless it is already logged
    unchanged; return the MLflow run id. ``steps=False`` logs only the last step's metrics (for an
    earlier grid phase, whose steps are the start of its training's longest run)."""
    run_dir = Path(run_dir)
    metrics = read_metrics(run_dir)
    folder = Path(dataset_root) / metrics["family"] / metrics["dataset"] if dataset_root is not None else None
    history = read_history(run_dir) if steps else read_history(run_dir).iloc[-1:]
    return log_record(mlflow, experiment_id, metrics, history, files_digest(run_dir), known,
                      lambda: [run_dir / METRICS, run_dir / MODEL, *figures(run_dir)],
                      folder if folder and folder.is_dir() else None)


def by_training(records: Iterable[tuple[Any, Mapping[str, Any]]]) -> dict[str, list[Any]]:
    """training_id -> its items, longest run first (:func:`kan.records.runfiles.longest_first`),
    from ``(item, record)`` pairs."""
    groups: dict[str, list[tuple[tuple[int, bool], Any]]] = {}
    for item, record in records:
        groups.setdefault(record.get("training_id") or record["run_id"], []).append((longest_first(record), item))
    return {key: [item for _, item in sorted(found, key=lambda pair: pair[0])] for key, found in groups.items()}


def nest(mlflow: "MlflowClient", parent: str, children: Iterable[str]) -> None:
    """Show ``children`` (earlier grid phases of a training) under ``parent`` (its longest run),
    which is nested under nothing (it may have been a child before its training grew)."""
    from mlflow.exceptions import MlflowException  # deferred: mlflow is slow to import

    try:
        mlflow.delete_tag(parent, PARENT)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":  # no such tag: the usual case
            raise
    for child in children:
        mlflow.set_tag(child, PARENT, parent)


def log_trainings(mlflow: "MlflowClient", experiment_id: str, run_dirs: Iterable[Path], known: Mapping[str, tuple[str, str]],
                  figures: Callable[[Path], list[Path]], dataset_root: Path | None = None) -> dict[str, str]:
    """Log run folders (:func:`log_run`, with ``figures(run_dir)`` as artifacts), each training's
    earlier grid phases nested under its longest run, which alone holds every step's metrics (the
    earlier phases keep their last step's: their steps are the longest run's first ones); run
    folder name -> MLflow run id."""
    logged: dict[str, str] = {}
    for longest, *earlier in by_training((Path(d), read_metrics(d)) for d in run_dirs).values():
        for run_dir in (longest, *earlier):
            logged[run_dir.name] = log_run(mlflow, experiment_id, run_dir, known, figures, dataset_root,
                                           steps=run_dir == longest)
        nest(mlflow, logged[longest.name], [logged[d.name] for d in earlier])
    return logged


def log_science_run(mlflow: "MlflowClient", experiment_id: str, result_dir: Path | str,
                    known: Mapping[str, tuple[str, str]]) -> str:
    """Log one science experiment's folder (tags and settings from its run record, its summary as
    metrics, figures, tables and both JSON files as artifacts) unless it is already logged
    unchanged; return the MLflow run id."""
    from mlflow.entities import Metric  # deferred: mlflow is slow to import

    result_dir = Path(result_dir)
    record = read_run_record(result_dir)
    digest = files_digest(result_dir, (SUMMARY, RUN_RECORD))
    current = _current_run(mlflow, known, record["config_id"], digest)
    if current:
        return current
    tags = {key: str(record.get(key, "")) for key in SCIENCE_TAG_KEYS}
    tags |= {"variant": "science", "files_digest": digest}
    start, end = run_times(record)
    run_id = mlflow.create_run(experiment_id, start_time=start, tags=tags, run_name=f"science/{record['experiment']}").info.run_id
    now = int(time.time() * 1000)
    summary = [Metric(key, value, now, 0) for key, value in read_summary(result_dir).items() if value == value]
    _log_values(mlflow, run_id, record["settings"], summary)
    for path in (result_dir / SUMMARY, result_dir / RUN_RECORD):
        mlflow.log_artifact(run_id, str(path))
    for folder in (FIGURES, TABLES):
        if (result_dir / folder).is_dir():  # published records keep tables, not figures
            mlflow.log_artifacts(run_id, str(result_dir / folder), folder)
    mlflow.set_terminated(run_id, "FINISHED", end_time=end)
    return run_id


def load_published(uri: str, experiment: str, records: Path | str,
                   progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Log published records (:mod:`kan.records.publish`) to the store at ``uri``: every run,
    nested by training under its longest run, which holds the (thinned) history (the others their
    last recorded step), and every science experiment; runs already logged unchanged are
    skipped. ``progress(done, total)`` hears how many runs are through, about every tenth of
    them and at the end. Returns the number of runs."""
    records = Path(records)
    runs = pd.read_parquet(records / RUNS)
    histories = pd.read_parquet(records / HISTORIES)
    by_run = dict(tuple(histories.groupby("run_id")))
    description = (f"Published records in {records.as_posix()}: one run per grid phase of each training (earlier phases "
                   f"nested under the longest, which holds the thinned history); report: {records.as_posix()}/paper_vs_ours.md")
    experiment_id = init_tracking(uri, experiment, None, description)
    mlflow = client(uri)
    known = logged_runs(mlflow, experiment_id)
    rows, done = runs.to_dict("records"), 0
    for training in by_training((row, row) for row in rows).values():
        kept = [by_run[r["run_id"]] for r in training if r["run_id"] in by_run]  # the longest run's, one per training
        history = kept[0] if kept else histories.iloc[:0]
        ids = []
        for record in training:
            digest = hashlib.sha256(record_bytes(record)).hexdigest()
            own = history[history["step"] <= record["steps"]]
            ids.append(log_record(mlflow, experiment_id, {**record, "config": json.loads(record["config"])},
                                  own if not ids else own.iloc[-1:], digest, known))
        nest(mlflow, ids[0], ids[1:])
        if (done + len(ids)) * 10 // len(rows) > done * 10 // len(rows):
            progress(done + len(ids), len(rows))
        done += len(ids)
    for folder in sorted(d for d in (records / SCIENCE).glob("*") if d.is_dir()):
        log_science_run(mlflow, experiment_id, folder, known)
    return len(rows)
