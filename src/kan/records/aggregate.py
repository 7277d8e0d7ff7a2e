"""Aggregate tables built from per-run files: ``runs.csv`` (one row per run) and
``histories.parquet`` (one row per run and recorded step), the two tables every report reads.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Iterable

import pandas as pd

from kan.records.runfiles import HISTORY_COLUMNS, METRICS, read_history, read_metrics
from kan.records.science_outputs import read_summary

RUN_COLUMNS = (
    "run_id", "experiment", "family", "dataset", "model", "variant", "shape", "initial_shape",
    "depth", "width", "activation", "lamb", "seed", "grid", "order", "n_params", "steps",
    "train_rmse", "test_rmse", "test_accuracy", "status", "seconds",
)
_FLOATS = ("lamb", "train_rmse", "test_rmse", "test_accuracy", "seconds")
_INTS = ("depth", "width", "seed", "grid", "order", "n_params", "steps")


def runs_table(run_dirs: Iterable[Path | str]) -> pd.DataFrame:
    """One row per run with exactly ``RUN_COLUMNS``, sorted by experiment, dataset, model
    configuration, seed and step count."""
    rows = [_run_row(Path(d)) for d in run_dirs]
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    frame = frame.astype({c: "float64" for c in _FLOATS} | {c: "int64" for c in _INTS})
    order = ["experiment", "dataset", "model", "variant", "initial_shape", "lamb", "activation", "seed", "steps"]
    return frame.sort_values(order, ignore_index=True)


def _run_row(directory: Path) -> dict[str, object]:
    """``RUN_COLUMNS`` of a run folder; ValueError naming the folder when its metrics.json lacks
    one of them or has no value for a count."""
    metrics = read_metrics(directory)
    missing = [c for c in RUN_COLUMNS if c not in metrics] + [c for c in _INTS if metrics.get(c, 0) is None]
    if missing:
        raise ValueError(f"{directory / METRICS} has no value for {', '.join(missing)}: not a run this code "
                         "wrote whole; delete the folder to train the run again")
    return {column: metrics[column] for column in RUN_COLUMNS}


def histories_table(run_dirs: Iterable[Path | str]) -> pd.DataFrame:
    """Every run's history with a leading ``run_id`` column (the standard history columns)."""
    frames = []
    for directory in run_dirs:
        history = read_history(directory)[list(HISTORY_COLUMNS)]
        frames.append(history.assign(run_id=Path(directory).name))
    columns = ["run_id", *HISTORY_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def manifest_runs(manifests: Iterable[Path | str]) -> list[Path]:
    """Run folders listed by train-job manifests, without duplicates, in order."""
    seen: dict[str, None] = {}
    for manifest in manifests:
        for run in json.loads(Path(manifest).read_text(encoding="utf-8"))["runs"]:
            seen.setdefault(run)
    return [Path(run) for run in seen]


def manifest_complete(manifest: Path | str) -> bool:
    """False when a run folder the manifest lists is gone or incomplete (moved, deleted, killed);
    True otherwise, including when there is no manifest yet."""
    manifest = Path(manifest)
    return not manifest.is_file() or all((run / METRICS).is_file() for run in manifest_runs([manifest]))


_STATE_CALLS = itertools.count()


def manifest_state(manifest: Path | str) -> bool | str:
    """The train rule's rerun trigger (a param Snakemake compares with the value it recorded when
    the chunk last ran): True while :func:`manifest_complete`; else a value never given before
    (``incomplete@<ns clock>.<call>``), so the chunk reruns even when it last ran with the same runs
    missing (runs deleted again before any later run recorded True)."""
    return True if manifest_complete(manifest) else f"incomplete@{time.time_ns()}.{next(_STATE_CALLS)}"


def write_tables(manifests: Iterable[Path | str], runs_csv: Path | str, histories_parquet: Path | str) -> None:
    """Build both tables from the runs listed in ``manifests``."""
    run_dirs = manifest_runs(manifests)
    Path(runs_csv).parent.mkdir(parents=True, exist_ok=True)
    runs_table(run_dirs).to_csv(runs_csv, index=False)
    histories_table(run_dirs).to_parquet(histories_parquet, index=False)


SCIENCE_COLUMNS = ("experiment", "metric", "value")


def science_table(result_dirs: Iterable[Path | str]) -> pd.DataFrame:
    """One row per science experiment (its folder name) and summary number, sorted."""
    rows = [{"experiment": Path(d).name, "metric": key, "value": value}
            for d in result_dirs for key, value in read_summary(d).items()]
    frame = pd.DataFrame(rows, columns=list(SCIENCE_COLUMNS)).astype({"value": "float64"})
    return frame.sort_values(["experiment", "metric"], ignore_index=True)
