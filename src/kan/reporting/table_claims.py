"""The paper's qualitative claims about its tables, as bounds on our block summaries.

A table block of ``paper.yaml`` (special functions, Feynman, toy scaling, grid extension) lists
its claims under ``checks`` as a science block does (:func:`kan.reporting.science.claim_checks`:
``metric`` at least or at most a number or another metric). The metrics are
``<key>.<column>`` for every finite number of our block summary (key: the dataset, or
``"<dataset> <shape>"`` for grid extension; e.g. ``xy.mlp_exponent``) and the derived metrics
of :data:`DERIVED` (e.g. ``exp_sin_sq [2,5,1].u_depth``). A claim we cannot check has no
``metric`` and says why in ``not_compared``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from kan.reporting.fidelity import within_band
from kan.reporting.reference import NOT_COMPARED
from kan.reporting.runs import parse_shape
from kan.reporting.science import ClaimCheck, claim_check

FEYNMAN_KANS = ("human_rmse", "best_pruned_rmse", "unpruned_rmse")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kan_over_mlp(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Per equation (rows of the Feynman block: ours or the paper's, same columns) the best KAN's
    test RMSE, any variant, over the best MLP's; equations without both are left out."""
    ratios = {}
    for row in rows:
        kans = [row[column] for column in FEYNMAN_KANS if _finite(row.get(column))]
        if kans and _finite(row.get("mlp_rmse")):
            ratios[str(row["dataset"])] = min(kans) / row["mlp_rmse"]
    return ratios


def _within(ratios: Mapping[str, float], tolerance_factor: float) -> int:
    """How many ``ratios`` lie within the block's band [1/f, f]."""
    return sum(within_band(ratio, 1.0, False, tolerance_factor) for ratio in ratios.values())


def _feynman_metrics(summary: pd.DataFrame, tolerance_factor: float) -> dict[str, float]:
    """Per equation ``best_kan_over_mlp_rmse`` (the best KAN of any variant over the best MLP) and
    ``min_pruned_depth`` (layers of the minimal pruned shape); over the equations,
    ``share_kan_within_tolerance_of_mlp``: the share whose ratio lies within the block's tolerance."""
    rows = [row.to_dict() for _, row in summary.iterrows()]
    ratios = _kan_over_mlp(rows)
    metrics = {f"{dataset}.best_kan_over_mlp_rmse": ratio for dataset, ratio in ratios.items()}
    metrics |= {f"{row['dataset']}.min_pruned_depth": float(len(parse_shape(row["min_pruned_shape"])) - 1)
                for row in rows if isinstance(row["min_pruned_shape"], str) and row["min_pruned_shape"]}
    if ratios:
        metrics["share_kan_within_tolerance_of_mlp"] = _within(ratios, tolerance_factor) / len(ratios)
    return metrics


def kan_vs_mlp_context(block: Mapping[str, Any], summary: pd.DataFrame) -> list[str]:
    """A line that reads the "comparable" claim against the paper's own table: the same share for
    the paper's numbers, and on how many equations the best KAN beats the best MLP, theirs and ours."""
    factor = float(block["tolerance_factor"])

    def counts(ratios: Mapping[str, float]) -> str:
        within = _within(ratios, factor)
        better = sum(r < 1 for r in ratios.values())
        return (f"{within} of {len(ratios)} within ×{factor:g} ({within / len(ratios):.2f}), the KAN better on "
                f"{better} of {len(ratios)}")

    ours = _kan_over_mlp(row.to_dict() for _, row in summary.iterrows())
    paper = _kan_over_mlp(block["rows"])
    if not ours or not paper:
        return []
    return [f"For reading \"comparable\": the best KAN against the best MLP per equation in the paper's own "
            f"table: {counts(paper)}; in ours: {counts(ours)}.", ""]


def _grid_metrics(summary: pd.DataFrame, tolerance_factor: float) -> dict[str, float]:
    """Per (dataset, shape) ``u_depth``: how far the test RMSE lies above its lowest at both ends of
    the grid range, min(coarsest G, finest G) over the lowest (1 when the best G is an end)."""
    ends = ("first_test_rmse", "final_test_rmse", "best_test_rmse")
    return {
        f"{row['dataset']} {row['shape']}.u_depth":
            min(row["first_test_rmse"], row["final_test_rmse"]) / row["best_test_rmse"]
        for _, row in summary.iterrows() if all(_finite(row[column]) for column in ends)
    }


DERIVED: Mapping[str, Callable[[pd.DataFrame, float], dict[str, float]]] = {
    "feynman": _feynman_metrics,
    "grid_extension": _grid_metrics,
}
CONTEXT: Mapping[str, Callable[[Mapping[str, Any], pd.DataFrame], list[str]]] = {"feynman": kan_vs_mlp_context}


def table_metrics(name: str, summary: pd.DataFrame, keys: Sequence[str], tolerance_factor: float) -> dict[str, float]:
    """Every metric a check of table block ``name`` can name, from our ``summary`` of that block."""
    metrics = {
        f"{' '.join(str(row[k]) for k in keys)}.{column}": float(value)
        for _, row in summary.iterrows() for column, value in row.items()
        if column not in keys and _finite(value)
    }
    derive = DERIVED.get(name)
    if derive is not None and not summary.empty:
        metrics.update(derive(summary, tolerance_factor))
    return metrics


def claim_context(name: str, block: Mapping[str, Any], summary: pd.DataFrame) -> list[str]:
    """Report lines that put table block ``name``'s claims beside the paper's own numbers (:data:`CONTEXT`)."""
    context = CONTEXT.get(name)
    return context(block, summary) if context is not None and not summary.empty else []


def table_claims(name: str, block: Mapping[str, Any], summary: pd.DataFrame,
                 keys: Sequence[str]) -> tuple[list[ClaimCheck], list[str]]:
    """The checks of table block ``name`` against our ``summary``, and ``claim: reason`` for each
    one not checked: the reason it gives (``not_compared``), or the metrics we have no number for
    (a dataset without runs, or a summary cell no run fills)."""
    metrics = table_metrics(name, summary, keys, float(block["tolerance_factor"]))
    found, unchecked = [], []
    for check in block.get("checks", ()):
        if NOT_COMPARED in check:
            unchecked.append(f"{check['claim']}: {check[NOT_COMPARED]}")
            continue
        result = claim_check(metrics, check)
        if isinstance(result, ClaimCheck):
            found.append(result)
        else:
            unchecked.append(f"{check['claim']}: no number of ours for {', '.join(result)}")
    return found, unchecked
