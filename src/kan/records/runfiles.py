"""Per-run files, the pipeline's source of truth:
``<results>/runs/<experiment>/<model>/<run-id>/{metrics.json, history.parquet, model.pt}``.

A run folder is written to a hidden temporary sibling and renamed into place, so a folder
with ``metrics.json`` is always complete and a killed job leaves no half-written run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from kan.files import atomic_file, atomic_folder, read_json, sha256_file

METRICS, HISTORY, MODEL = "metrics.json", "history.parquet", "model.pt"
MODEL_DIGEST = "model_sha256"  # metrics.json key: sha256 of model.pt, checked by checked_model
HISTORY_COLUMNS = ("step", "grid", "train_rmse", "test_rmse", "train_loss", "test_loss", "regularization")


def run_dir(results: Path | str, experiment: str, model: str, run_id: str) -> Path:
    """Folder of one run."""
    return Path(results) / "runs" / experiment / model / run_id


def is_finished(directory: Path | str) -> bool:
    """True when the run folder is complete (it has metrics.json)."""
    return (Path(directory) / METRICS).is_file()


def json_ready(value: Any) -> Any:
    """NaN/Inf become None (recursively) so JSON files stay strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def history_frame(history: Sequence[Mapping[str, float]]) -> pd.DataFrame:
    """History records as a frame; the standard columns always exist (NaN if absent)."""
    frame = pd.DataFrame(list(history))
    for column in HISTORY_COLUMNS:
        if column not in frame:
            frame[column] = float("nan")
    extra = [c for c in frame.columns if c not in HISTORY_COLUMNS]
    frame = frame[[*HISTORY_COLUMNS, *extra]].astype("float64")
    return frame.astype({"step": "int64", "grid": "int64"})


def write_run(directory: Path | str, metrics: Mapping[str, Any], history: Sequence[Mapping[str, float]], model: Any) -> Path:
    """Write metrics, history and ``model.save`` output (a KAN or MLP of the library) atomically to
    ``directory``; metrics.json keeps the sha256 of model.pt (``model_sha256``)."""
    directory = Path(directory)
    with atomic_folder(directory) as tmp:
        history_frame(history).to_parquet(tmp / HISTORY, index=False)
        model.save(tmp / MODEL)
        (tmp / METRICS).write_text(_metrics_text({**metrics, MODEL_DIGEST: sha256_file(tmp / MODEL)}), encoding="utf-8")
    return directory


def _metrics_text(record: Mapping[str, Any]) -> str:
    return json.dumps(json_ready(record), indent=2, sort_keys=True, allow_nan=False) + "\n"


def update_metrics(directory: Path | str, changes: Mapping[str, Any]) -> None:
    """Merge ``changes`` into the run's metrics.json, replacing the file in one rename (the
    folder's other files stay as they are)."""
    record = {**read_metrics(directory), **changes}
    with atomic_file(Path(directory) / METRICS) as tmp:
        tmp.write_text(_metrics_text(record), encoding="utf-8")


def read_metrics(directory: Path | str) -> dict[str, Any]:
    """The run's metrics.json (None where a metric was NaN); ValueError naming the file when it
    is not valid JSON."""
    return read_json(Path(directory) / METRICS, "delete the folder to train the run again")


def longest_first(record: Mapping[str, Any]) -> tuple[int, bool]:
    """Sort key that puts a training's longest run first: the most steps; on a tie (a last grid
    phase that diverged at its first step records as many steps as the phase before) its final
    stage. The run it picks holds the training's whole history."""
    return -int(record["steps"]), not bool(record.get("final_stage", True))


def read_history(directory: Path | str) -> pd.DataFrame:
    """The run's per-step history."""
    return pd.read_parquet(Path(directory) / HISTORY)


def checked_model(directory: Path | str) -> Path:
    """The run's model.pt, after checking it against the digest its metrics.json recorded (runs
    written before digests were recorded pass unchecked); ValueError naming the folder when the
    file was altered. ``kan.load_model`` reads it."""
    directory = Path(directory)
    recorded = read_metrics(directory).get(MODEL_DIGEST)
    if recorded is not None and sha256_file(directory / MODEL) != recorded:
        raise ValueError(f"{directory / MODEL} does not match the sha256 in its {METRICS}: the file was altered or "
                         f"damaged; retrain the run (delete its folder) or restore the file")
    return directory / MODEL
