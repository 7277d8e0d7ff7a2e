"""The files a science experiment writes under its output folder: ``tables/<name>.{csv,md}``,
``figures/<name>.png``, ``summary.json`` (the headline numbers) and, when the pipeline runs it,
``run.json`` (what ran: settings, config id, commit, profile, seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from kan.files import read_json
from kan.records.markdown import MISSING, is_missing, markdown_table
from kan.records.runfiles import json_ready

SUMMARY, RUN_RECORD = "summary.json", "run.json"
RERUN_EXPERIMENT = "rerun the experiment that wrote it"  # what to do about a broken file of a result
TABLES, FIGURES = "tables", "figures"


def _number(value: Any) -> str:
    """Four significant digits; a dash when missing."""
    return MISSING if is_missing(value) else f"{float(value):.4g}"


def read_summary(out_dir: Path | str) -> dict[str, float]:
    """The headline numbers of a finished experiment (NaN where the file has null)."""
    values = read_json(Path(out_dir) / SUMMARY, RERUN_EXPERIMENT)
    return {key: math.nan if value is None else float(value) for key, value in values.items()}


def write_run_record(out_dir: Path | str, record: Mapping[str, Any]) -> None:
    """Write ``run.json``."""
    text = json.dumps(json_ready(dict(record)), indent=2, sort_keys=True, allow_nan=False)
    (Path(out_dir) / RUN_RECORD).write_text(text + "\n", encoding="utf-8")


def read_run_record(out_dir: Path | str) -> dict[str, Any]:
    """The ``run.json`` of a finished experiment."""
    return read_json(Path(out_dir) / RUN_RECORD, RERUN_EXPERIMENT)


class Outputs:
    """Writer for one experiment's output folder."""

    def __init__(self, out_dir: Path | str) -> None:
        self.root = Path(out_dir)
        for part in (TABLES, FIGURES):
            (self.root / part).mkdir(parents=True, exist_ok=True)

    def table(self, name: str, frame: pd.DataFrame) -> None:
        """``tables/<name>.csv`` and the same table as Markdown (floats to 4 significant digits)."""
        frame.to_csv(self.root / TABLES / f"{name}.csv", index=False)
        floats = {column: _number for column in frame.columns if pd.api.types.is_float_dtype(frame[column])}
        cells = frame.astype(object).where(frame.notna(), None)  # pd.NA has no truth value
        (self.root / TABLES / f"{name}.md").write_text(markdown_table(cells, floats), encoding="utf-8")

    def figure(self, name: str) -> Path:
        """Where figure ``name`` goes: ``figures/<name>.png``."""
        return self.root / FIGURES / f"{name}.png"

    def summary(self, values: Mapping[str, Any]) -> dict[str, float]:
        """Write ``summary.json`` (keys sorted, NaN as null) and return the values as floats."""
        numbers = {key: float(value) for key, value in values.items()}
        text = json.dumps(json_ready(numbers), indent=2, sort_keys=True, allow_nan=False)
        (self.root / SUMMARY).write_text(text + "\n", encoding="utf-8")
        return numbers
