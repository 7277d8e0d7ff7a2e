"""The paper's claims about its tables, checked on made-up block summaries (not results)."""

import pandas as pd
import pytest

from kan.reporting.reference import load_reference, validate_reference
from kan.reporting.table_claims import claim_context, table_claims, table_metrics

NAN = float("nan")


def _feynman(*rows):
    columns = ["dataset", "human_rmse", "min_pruned_shape", "best_pruned_rmse", "unpruned_rmse", "mlp_rmse"]
    return pd.DataFrame([dict(zip(columns, row)) for row in rows], columns=columns)


FEYNMAN = _feynman(
    ("I.16.6", 1e-3, "[2,1,1]", 2e-3, NAN, 1e-3),  # best KAN 1e-3 vs MLP 1e-3: ratio 1
    ("I.6.20", 1e-5, "", 1e-4, 1e-4, 1e-3),  # ratio 0.01: KAN 100x better
    ("II.38.3", 5e-2, "[2,2,2,1]", NAN, 4e-2, 1e-3),  # ratio 40: MLP 40x better
    ("I.9.18", NAN, NAN, 3e-3, 2e-3, 1e-3),  # no human KAN, no minimal shape: best KAN 2e-3, ratio 2
    ("I.12.11", 1e-3, "[2,2,1]", 1e-3, 1e-3, NAN),  # no MLP: no ratio, not in the share
)


def test_the_comparable_claim_is_read_beside_the_papers_own_table():
    block = {"tolerance_factor": 10.0, "rows": [
        {"dataset": "I.6.20", "human_rmse": 1e-4, "best_pruned_rmse": 2e-4, "unpruned_rmse": 3e-4, "mlp_rmse": 2e-4},
        {"dataset": "I.9.18", "human_rmse": 5e-3, "best_pruned_rmse": 8e-3, "unpruned_rmse": 6e-3, "mlp_rmse": 1e-4},
    ]}  # the paper's ratios: 0.5 (KAN better, within) and 50 (outside)
    line, _ = claim_context("feynman", block, FEYNMAN)
    assert "in the paper's own table: 1 of 2 within ×10 (0.50), the KAN better on 1 of 2" in line
    assert "in ours: 2 of 4 within ×10 (0.50), the KAN better on 1 of 4" in line  # ratios 1, 0.01, 40, 2
    assert claim_context("special_functions", block, FEYNMAN) == []


def test_summary_cells_become_dataset_metrics_and_missing_ones_do_not():
    metrics = table_metrics("feynman", FEYNMAN, ["dataset"], 10.0)
    assert metrics["I.16.6.human_rmse"] == 1e-3
    assert "I.16.6.unpruned_rmse" not in metrics  # NaN: no run of that kind
    assert "I.6.20.min_pruned_shape" not in metrics  # not a number


def test_feynman_derived_metrics_take_the_best_kan_of_any_variant():
    metrics = table_metrics("feynman", FEYNMAN, ["dataset"], 10.0)
    assert metrics["I.6.20.best_kan_over_mlp_rmse"] == pytest.approx(1e-2)
    assert metrics["II.38.3.best_kan_over_mlp_rmse"] == pytest.approx(40.0)
    assert metrics["I.9.18.best_kan_over_mlp_rmse"] == pytest.approx(2.0)  # the NaN human RMSE skipped
    assert "I.12.11.best_kan_over_mlp_rmse" not in metrics
    assert metrics["I.16.6.min_pruned_depth"] == 2 and metrics["II.38.3.min_pruned_depth"] == 3
    assert "I.6.20.min_pruned_depth" not in metrics and "I.9.18.min_pruned_depth" not in metrics  # no minimal shape
    # within x10 either way: I.16.6 and I.9.18 (I.6.20 is 100x better, II.38.3 40x worse); I.12.11 has no MLP
    assert metrics["share_kan_within_tolerance_of_mlp"] == pytest.approx(2 / 4)
    assert table_metrics("feynman", FEYNMAN, ["dataset"], 200.0)["share_kan_within_tolerance_of_mlp"] == 1.0


def test_grid_u_depth_is_the_lower_end_over_the_best():
    summary = pd.DataFrame([
        {"dataset": "exp_sin_sq", "shape": "[2,5,1]", "best_grid": 50.0, "best_test_rmse": 1e-4,
         "first_test_rmse": 3e-2, "final_test_rmse": 5e-3},  # a U: 50x above the best at the finest G
        {"dataset": "exp_sin_sq", "shape": "[2,1,1]", "best_grid": 1000.0, "best_test_rmse": 1e-6,
         "first_test_rmse": 1e-2, "final_test_rmse": 1e-6},  # falls all the way: no U
    ])
    metrics = table_metrics("grid_extension", summary, ["dataset", "shape"], 2.0)
    assert metrics["exp_sin_sq [2,5,1].u_depth"] == pytest.approx(50.0)
    assert metrics["exp_sin_sq [2,1,1].u_depth"] == pytest.approx(1.0)
    assert metrics["exp_sin_sq [2,5,1].best_grid"] == 50.0


def test_checks_hold_fail_or_say_why_they_were_not_made():
    block = {"tolerance_factor": 10.0, "checks": [
        {"claim": "comparable", "metric": "share_kan_within_tolerance_of_mlp", "at_least": 0.5},
        {"claim": "two layers", "metric": "I.16.6.min_pruned_depth", "at_most": 2},
        {"claim": "KAN beats MLP on I.6.20", "metric": "I.6.20.best_kan_over_mlp_rmse", "at_most": 1e-3},
        {"claim": "needs a run we lack", "metric": "I.30.5.mlp_rmse", "at_most": 1.0},
        {"claim": "bound we lack", "metric": "I.16.6.human_rmse", "at_most": "I.30.5.human_rmse"},
        {"claim": "another shape", "not_compared": "we do not train it"},
    ]}
    checks, unchecked = table_claims("feynman", block, FEYNMAN, ["dataset"])
    verdicts = {c.claim: c.holds for c in checks}
    assert verdicts == {"comparable": True, "two layers": True, "KAN beats MLP on I.6.20": False}
    assert unchecked == ["needs a run we lack: no number of ours for I.30.5.mlp_rmse",
                         "bound we lack: no number of ours for I.30.5.human_rmse", "another shape: we do not train it"]


@pytest.mark.parametrize("check, problem", [
    ({"metric": "xy.kan_exponent", "at_least": 1}, "needs a 'claim'"),
    ({"claim": "c", "metric": "xy.kan_exponent"}, "exactly one bound"),
    ({"claim": "c", "metric": "xy.kan_exponent", "at_least": 1, "at_most": 2}, "exactly one bound"),
    ({"claim": "c", "metric": "xy.kan_exponent", "at_least": 1, "not_compared": "why"}, "not both"),
    ({"claim": "c"}, "either a 'metric'"),
    ({"claim": "c", "metric": "xy.kan_exponent", "at_most": [1]}, "expected a number or a metric name"),
])
def test_a_malformed_check_is_named(reference_path, check, problem):
    reference = load_reference(reference_path)
    reference["toy_scaling"]["checks"] = [check]
    problems = validate_reference(reference)
    assert len(problems) == 1 and problems[0].startswith("toy_scaling.checks[0]") and problem in problems[0]
