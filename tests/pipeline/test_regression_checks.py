"""Regression comparisons name the experiment, the run and the numbers when they fail."""

from __future__ import annotations

import pandas as pd

from kan.experiments.regression import compare_expected, compare_paper, compare_trends, expected_table


def _runs():
    rows = [("r1", 3, 0.10), ("r2", 5, 0.01), ("r3", 10, 0.001)]
    return pd.DataFrame([
        {"run_id": rid, "experiment": "grid_extension", "dataset": "exp_sin_sq", "model": "kan", "variant": "human",
         "shape": "[2,1,1]", "grid": grid, "seed": 0, "n_params": 10 * grid, "steps": grid, "status": "ok",
         "train_rmse": rmse / 2, "test_rmse": rmse}
        for rid, grid, rmse in rows
    ])


def test_identical_tables_pass():
    runs = _runs()
    assert compare_expected(runs, expected_table(runs), rtol=1e-9) == []


def test_differences_are_named_with_their_numbers():
    runs, expected = _runs(), expected_table(_runs())
    runs.loc[1, "test_rmse"] = 0.02
    runs.loc[2, "n_params"] = 99
    failures = compare_expected(runs.drop(index=0), expected, rtol=1e-6)
    assert any("missing run: grid_extension/exp_sin_sq human [2,1,1] G=3" in f for f in failures)
    assert any("G=5" in f and "test_rmse = 0.02, expected 0.01" in f for f in failures)
    assert any("G=10" in f and "n_params is 99, expected 100" in f for f in failures)


def test_paper_check_uses_the_factor():
    reference = {"toy": {"rows": [{"dataset": "exp_sin_sq", "rmse": 1e-4}]}}
    check = {"experiment": "grid_extension", "dataset": "exp_sin_sq", "variants": ["human"], "factor": 10,
             "paper": {"block": "toy", "column": "rmse"}}
    assert compare_paper(_runs(), [check], reference) == []
    failures = compare_paper(_runs(), [{**check, "factor": 5}], reference)
    assert failures == ["grid_extension/exp_sin_sq human: best test RMSE 0.001 exceeds 5 x the paper's 0.0001 "
                        "(paper.yaml toy/rmse)"]


def test_trend_check_wants_rmse_to_fall_with_the_grid():
    trend = {"experiment": "grid_extension", "dataset": "exp_sin_sq", "variant": "human", "shape": "[2,1,1]",
             "claim": "grid extension lowers test RMSE"}
    runs = _runs()
    assert compare_trends(runs, [trend]) == []
    runs.loc[2, "test_rmse"] = 0.5
    assert "G=10: 0.5" in compare_trends(runs, [trend])[0]
