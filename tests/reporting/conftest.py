"""Fixtures of the reporting tests: synthetic runs tables (made-up numbers, not results)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

from kan.records.aggregate import RUN_COLUMNS

FAMILIES = {"special": "special", "feynman": "feynman", "toy_scaling": "synthetic", "grid_extension": "synthetic"}


def synthetic_run(number: int, **cells: Any) -> dict[str, Any]:
    """One made-up row of runs.csv; ``cells`` override the defaults."""
    row: dict[str, Any] = {
        "run_id": f"run{number:04d}", "experiment": "special", "dataset": "jv", "model": "kan",
        "variant": "unpruned", "shape": "[2,5,1]", "activation": "", "lamb": 0.0, "seed": 0, "grid": 3,
        "order": 3, "n_params": 100, "steps": 10, "test_rmse": 1e-2, "test_accuracy": float("nan"),
        "status": "ok", "seconds": 1.0,
    }
    row.update(cells)
    shape = json.loads(row["shape"])
    row.setdefault("family", FAMILIES[row["experiment"]])
    row.setdefault("initial_shape", row["shape"])
    row.setdefault("depth", len(shape) - 1)
    row.setdefault("width", max(shape[1:-1], default=0))
    row.setdefault("train_rmse", row["test_rmse"])
    if row["model"] == "mlp":
        row.update(grid=0, variant="mlp", activation=row["activation"] or "tanh")
    return row


@pytest.fixture
def reference_path() -> Path:
    return Path(__file__).resolve().parents[2] / "reports" / "reference" / "paper.yaml"


@pytest.fixture
def make_runs() -> Callable[..., pd.DataFrame]:
    """``make_runs(dict(...), dict(...))`` → a runs table with exactly the pipeline's columns."""

    def build(*rows: dict[str, Any]) -> pd.DataFrame:
        return pd.DataFrame([synthetic_run(n, **cells) for n, cells in enumerate(rows)], columns=list(RUN_COLUMNS))

    return build
