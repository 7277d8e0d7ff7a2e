"""One summary row per dataset (per shape for grid extension), as the paper's tables have them.

Column names match the rows of ``reports/reference/paper.yaml``, so the comparison with the
paper is a join on the key columns. Shapes are in the runs table's spelling ``"[2,2,1]"``;
exponents are α in ``RMSE ∝ N^-α`` (positive). Inputs are usable runs (status "ok").

Selection rules (the paper's, where it states them):
- *minimal* shape: the smallest pruned shape whose best run has test RMSE < 1e-2
  (:func:`kan.reporting.analysis.minimal_shape`);
- *best*: the lowest test RMSE over seeds, depths, λ and grid phases of the model family;
  "best KAN" of the special functions is the best pruned KAN (docs/protocol.md), and
  ``any_kan`` the best of every KAN variant (no paper counterpart);
- exponents: fitted on the Pareto front of (parameters or G, test RMSE).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import pandas as pd

from kan.reporting.analysis import best_row, frontier_exponent, minimal_shape
from kan.reporting.runs import parse_shape

MIN_KAN_RMSE = 1e-2  # paper: the minimal KAN is the smallest shape with test RMSE below 1e-2

Rule = Callable[[pd.DataFrame], pd.Series | None]
# (column prefix, filter on the runs, rule picking one run): gives <prefix>_shape and <prefix>_rmse
Pick = tuple[str, Mapping[str, str], Rule]



def _minimal(frame: pd.DataFrame) -> pd.Series | None:
    return minimal_shape(frame, MIN_KAN_RMSE)


# The paper's best KAN is a pruned one: none of its 15 best shapes has the width-5 hidden layer
# of every unpruned KAN in its sweep (docs/protocol.md); any_kan adds the best KAN of any variant.
SPECIAL_PICKS: tuple[Pick, ...] = (
    ("min_kan", {"model": "kan", "variant": "pruned"}, _minimal),
    ("best_kan", {"model": "kan", "variant": "pruned"}, best_row),
    ("mlp", {"model": "mlp"}, best_row),
    ("any_kan", {"model": "kan"}, best_row),
)
FEYNMAN_PICKS: tuple[Pick, ...] = (
    ("human", {"model": "kan", "variant": "human"}, best_row),
    ("min_pruned", {"model": "kan", "variant": "pruned"}, _minimal),
    ("best_pruned", {"model": "kan", "variant": "pruned"}, best_row),
    ("unpruned", {"model": "kan", "variant": "unpruned"}, best_row),
    ("mlp", {"model": "mlp"}, best_row),
)


def _select(frame: pd.DataFrame, where: Mapping[str, str]) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    for column, value in where.items():
        keep &= (frame[column] == value).to_numpy()
    return frame[keep]


def _pick_columns(picks: tuple[Pick, ...]) -> list[str]:
    return [f"{prefix}_{part}" for prefix, _, _ in picks for part in ("shape", "rmse")]


def _picked(group: pd.DataFrame, picks: tuple[Pick, ...]) -> dict[str, object]:
    cells: dict[str, object] = {}
    for prefix, where, rule in picks:
        row = rule(_select(group, where))
        cells[f"{prefix}_shape"] = "" if row is None else row["shape"]
        cells[f"{prefix}_rmse"] = float("nan") if row is None else float(row["test_rmse"])
    return cells


def _per_dataset(runs: pd.DataFrame, experiment: str, picks: tuple[Pick, ...]) -> pd.DataFrame:
    rows = [
        {"dataset": dataset, **_picked(group, picks), "runs": len(group)}
        for dataset, group in runs[runs["experiment"] == experiment].groupby("dataset", sort=True)
    ]
    return pd.DataFrame(rows, columns=["dataset", *_pick_columns(picks), "runs"])


def special_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Special functions: minimal and best pruned KAN (shape, test RMSE), the best MLP and the best
    KAN of any variant, per function."""
    return _per_dataset(runs, "special", SPECIAL_PICKS)


def feynman_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Feynman equations: human-shape, minimal/best pruned, unpruned KAN and MLP, per equation."""
    return _per_dataset(runs, "feynman", FEYNMAN_PICKS)


def input_dim(group: pd.DataFrame) -> int:
    """The input dimension d of a dataset's runs (first entry of their shapes)."""
    return parse_shape(group["initial_shape"].iloc[0])[0]


def scaling_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Toy scaling: per function, d and α of ``RMSE ∝ N^-α`` for the KAN and MLP fronts."""
    columns = ["dataset", "input_dim", "kan_exponent", "kan_points", "best_kan_rmse",
               "mlp_exponent", "mlp_points", "best_mlp_rmse", "runs"]
    rows = []
    for dataset, group in runs[runs["experiment"] == "toy_scaling"].groupby("dataset", sort=True):
        row: dict[str, object] = {"dataset": dataset, "input_dim": input_dim(group), "runs": len(group)}
        for model in ("kan", "mlp"):
            subset = group[group["model"] == model]
            row[f"{model}_exponent"], row[f"{model}_points"] = frontier_exponent(subset)
            row[f"best_{model}_rmse"] = subset["test_rmse"].min()
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def grid_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Grid extension without pruning: median train/test RMSE over seeds per (dataset, shape, G)."""
    kan = runs[(runs["experiment"] == "grid_extension") & runs["variant"].isin(["unpruned", "human"])]
    keys = ["dataset", "initial_shape", "grid"]
    curves = kan.groupby(keys, as_index=False)[["train_rmse", "test_rmse", "n_params"]].median()
    return curves.rename(columns={"initial_shape": "shape"})


def grid_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Grid extension: per (dataset, shape) the G of the lowest test RMSE, that RMSE, the test RMSE
    at the coarsest and at the finest G and α in ``RMSE ∝ G^-α``."""
    columns = ["dataset", "shape", "grids", "best_grid", "best_test_rmse", "first_test_rmse", "final_test_rmse",
               "test_rmse_exponent"]
    rows = []
    for (dataset, shape), curve in grid_curves(runs).groupby(["dataset", "shape"], sort=True):
        best = best_row(curve)
        exponent, _ = frontier_exponent(curve, cost="grid")
        rows.append({
            "dataset": dataset, "shape": shape, "grids": len(curve),
            "best_grid": float("nan") if best is None else float(best["grid"]),
            "best_test_rmse": float("nan") if best is None else float(best["test_rmse"]),
            "first_test_rmse": float(curve.sort_values("grid")["test_rmse"].iloc[0]),
            "final_test_rmse": float(curve.sort_values("grid")["test_rmse"].iloc[-1]),
            "test_rmse_exponent": exponent,
        })
    return pd.DataFrame(rows, columns=columns)
