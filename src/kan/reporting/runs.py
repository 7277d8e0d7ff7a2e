"""The two aggregate tables every report reads, checked on the way in.

``runs.csv`` has one row per run (``kan.records.aggregate.RUN_COLUMNS``); a KAN trained
through a grid schedule yields one run per grid phase, so one configuration appears once per
G. ``histories.parquet`` has one row per run and recorded step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pandas as pd

from kan.records.aggregate import RUN_COLUMNS
from kan.records.runfiles import HISTORY_COLUMNS

HISTORY_TABLE_COLUMNS = ("run_id", *HISTORY_COLUMNS)
_TEXT_COLUMNS = (
    "run_id", "experiment", "family", "dataset", "model", "variant", "shape", "initial_shape", "activation", "status",
)
_NUMERIC_COLUMNS = tuple(c for c in RUN_COLUMNS if c not in _TEXT_COLUMNS)

Table = pd.DataFrame | str | Path


def _read(source: Table, reader: str) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source.copy(), "runs table"
    path = Path(source)
    if reader == "csv":
        return pd.read_csv(path, dtype={c: "string" for c in _TEXT_COLUMNS}), str(path)
    return pd.read_parquet(path), str(path)


def _require(frame: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{where} is missing column(s) {missing}; expected {list(columns)}")


def load_runs(source: Table) -> pd.DataFrame:
    """``runs.csv`` (a path, or a frame already read) with its columns checked.

    Raises ValueError naming every missing column. Text columns come back as ``str`` ("" where
    empty), the others as numbers (NaN where empty).
    """
    frame, where = _read(source, "csv")
    _require(frame, RUN_COLUMNS, where)
    for column in _TEXT_COLUMNS:
        frame[column] = frame[column].astype("string").fillna("").astype(str)
    for column in _NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame[list(RUN_COLUMNS)]


def load_histories(source: Table) -> pd.DataFrame:
    """``histories.parquet`` (a path, or a frame) with its columns checked."""
    frame, where = _read(source, "parquet")
    _require(frame, HISTORY_TABLE_COLUMNS, where)
    frame["run_id"] = frame["run_id"].astype(str)
    return frame


def usable_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The runs with ``status == "ok"`` and how many others were left out."""
    ok = runs["status"] == "ok"
    return runs[ok].reset_index(drop=True), int((~ok).sum())


def left_out(runs: pd.DataFrame) -> str:
    """What :func:`usable_runs` leaves out, per status: how many runs, of which models and, for
    KANs, the grid sizes they ended at, e.g. ``50 diverged (kan at G = 100-200)``; ``none``."""
    others = runs[runs["status"] != "ok"]
    parts = []
    for status, rows in others.groupby("status", sort=True):
        grids = sorted({int(g) for g in rows.loc[rows["model"] == "kan", "grid"].dropna()})
        where = "" if not grids else f" at G = {grids[0]}" + (f"–{grids[-1]}" if len(grids) > 1 else "")
        parts.append(f"{len(rows)} {status} ({', '.join(sorted(set(rows['model'])))}{where})")
    return ", ".join(parts) or "none"


def parse_shape(text: str) -> tuple[int, ...]:
    """``"[2,5,1]"`` → ``(2, 5, 1)``."""
    return tuple(int(n) for n in json.loads(text))


def format_shape(shape: Iterable[int]) -> str:
    """``(2, 5, 1)`` → ``"[2,5,1]"``, the runs table's spelling."""
    return "[" + ",".join(str(int(n)) for n in shape) + "]"


def shape_size(shape: Iterable[int]) -> tuple[int, int]:
    """How big a KAN shape is: (number of edges, number of hidden nodes)."""
    shape = list(shape)
    return sum(a * b for a, b in zip(shape[:-1], shape[1:])), sum(shape[1:-1])
