"""Selection rules and fits shared by the figures, the tables and the paper comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kan.reporting.runs import parse_shape, shape_size


def pareto_mask(cost: np.ndarray, error: np.ndarray) -> np.ndarray:
    """True for every point that no other point dominates (both coordinates minimised).

    Point b dominates a when b is no worse in both coordinates and strictly better in one;
    identical points do not dominate each other.
    """
    cost, error = np.asarray(cost, dtype=float), np.asarray(error, dtype=float)
    no_worse = (cost[None, :] <= cost[:, None]) & (error[None, :] <= error[:, None])  # [a, b]: b no worse than a
    better = (cost[None, :] < cost[:, None]) | (error[None, :] < error[:, None])
    return ~(no_worse & better).any(axis=1)


def pareto_front(frame: pd.DataFrame, cost: str = "n_params", error: str = "test_rmse") -> pd.DataFrame:
    """The non-dominated rows of ``frame`` (rows with a missing value are left out), sorted by cost."""
    frame = frame.dropna(subset=[cost, error])
    return frame[pareto_mask(frame[cost].to_numpy(), frame[error].to_numpy())].sort_values([cost, error])


def fit_power_law(x: np.ndarray, y: np.ndarray) -> float:
    """The slope of ``log y`` against ``log x`` by least squares (``y ∝ x^slope``).

    NaN unless there are two distinct positive x with positive y. Computed in scalar Python
    floats (``math.log``, correctly rounded ``math.fsum``), so the digits do not depend on the
    points' order or on NumPy's vectorised log and LAPACK, which pick their kernels by CPU
    (the C library's log may still differ between CPUs with and without FMA).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if np.unique(x).size < 2:
        return float("nan")
    log_x, log_y = [math.log(v) for v in x.tolist()], [math.log(v) for v in y.tolist()]
    mean_x, mean_y = math.fsum(log_x) / len(log_x), math.fsum(log_y) / len(log_y)
    dx = [v - mean_x for v in log_x]
    return math.fsum(d * (v - mean_y) for d, v in zip(dx, log_y)) / math.fsum(d * d for d in dx)


def frontier_exponent(frame: pd.DataFrame, cost: str = "n_params", error: str = "test_rmse") -> tuple[float, int]:
    """α in ``error ∝ cost^-α`` fitted on the Pareto front, and the number of front points.

    Fitting the front leaves out points past the best error (overfitting, precision floor),
    which would otherwise flatten the slope.
    """
    front = pareto_front(frame, cost, error)
    return -fit_power_law(front[cost].to_numpy(), front[error].to_numpy()), len(front)


def best_row(frame: pd.DataFrame, metric: str = "test_rmse") -> pd.Series | None:
    """The row with the lowest ``metric`` (None when there is none)."""
    frame = frame.dropna(subset=[metric])
    return None if frame.empty else frame.loc[frame[metric].idxmin()]


def minimal_shape(frame: pd.DataFrame, threshold: float = 1e-2, metric: str = "test_rmse") -> pd.Series | None:
    """The paper's "minimal KAN": the smallest final shape whose best run has ``metric < threshold``.

    Shapes are ordered by number of edges, then hidden nodes, then the metric. Returns that
    shape's best row, or None when no shape gets below the threshold.
    """
    frame = frame.dropna(subset=[metric])
    if frame.empty:
        return None
    best = frame.loc[frame.groupby("shape")[metric].idxmin()]
    best = best[best[metric] < threshold]
    if best.empty:
        return None
    size = best["shape"].map(lambda s: shape_size(parse_shape(s)))
    order = sorted(best.index, key=lambda i: (*size[i], best.at[i, metric]))
    return best.loc[order[0]]
