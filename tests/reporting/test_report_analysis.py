"""Pareto fronts, power-law fits and the minimal-shape rule."""

import numpy as np
import pandas as pd
import pytest

from kan.reporting.analysis import fit_power_law, frontier_exponent, minimal_shape, pareto_front, pareto_mask


def _brute_force(cost, error):
    n = len(cost)
    return np.array([
        not any(
            cost[b] <= cost[a] and error[b] <= error[a] and (cost[b] < cost[a] or error[b] < error[a])
            for b in range(n)
        )
        for a in range(n)
    ])


def test_front_is_exactly_the_non_dominated_points():
    rng = np.random.default_rng(0)
    for _ in range(20):
        cost = rng.integers(1, 8, size=40).astype(float)  # a coarse lattice forces ties and duplicates
        error = rng.integers(1, 8, size=40).astype(float)
        np.testing.assert_array_equal(pareto_mask(cost, error), _brute_force(cost, error))


def test_front_by_hand():
    #          A     B     C     D     E     A again
    cost = [1.0, 2.0, 2.0, 3.0, 4.0, 1.0]
    error = [5.0, 3.0, 4.0, 3.0, 1.0, 5.0]
    # C is dominated by B (same cost, larger error), D by B (same error, larger cost).
    assert pareto_mask(np.array(cost), np.array(error)).tolist() == [True, True, False, False, True, True]


def test_pareto_front_sorts_and_skips_missing_values():
    frame = pd.DataFrame({"n_params": [40, 10, 20, 30], "test_rmse": [1e-4, 1e-2, np.nan, 1e-3]})
    assert pareto_front(frame)["n_params"].tolist() == [10, 30, 40]


def test_power_law_fit_recovers_the_exponent():
    n = np.geomspace(10, 1e4, 12)
    assert fit_power_law(n, 3.0 * n**-2.5) == pytest.approx(-2.5)
    assert np.isnan(fit_power_law([10.0, 10.0], [1.0, 2.0]))


def test_power_law_fit_is_exact_in_any_point_order():
    """Correctly rounded sums: the digits cannot depend on summation order (or a CPU's kernels)."""
    rng = np.random.default_rng(0)
    n = np.geomspace(10, 1e4, 9)
    rmse = n**-3.1 * np.exp(rng.normal(0.0, 0.3, n.size))
    order = rng.permutation(n.size)
    assert fit_power_law(n[order], rmse[order]) == fit_power_law(n, rmse)


def test_frontier_exponent_ignores_points_past_the_best_error():
    n = np.geomspace(10, 1e4, 8)
    frame = pd.DataFrame({"n_params": [*n, 1e5, 1e6], "test_rmse": [*(n**-4.0), 1e-6, 1e-5]})  # overfitting tail
    exponent, points = frontier_exponent(frame)
    assert exponent == pytest.approx(4.0)
    assert points == 8


def test_minimal_shape_is_the_smallest_shape_below_the_threshold():
    runs = pd.DataFrame({
        "shape": ["[2,5,1]", "[2,2,1]", "[2,2,1]", "[2,1,1]", "[2,1,1,1]", "[2,1,1,1]"],
        "test_rmse": [1e-4, 5e-3, 2e-2, 2e-2, 8e-3, 9e-3],
    })
    row = minimal_shape(runs, threshold=1e-2)
    # [2,1,1] has 3 edges but never gets below 1e-2; [2,1,1,1] (4 edges) beats [2,2,1] (6 edges).
    assert row["shape"] == "[2,1,1,1]"
    assert row["test_rmse"] == 8e-3  # that shape's best run
    assert minimal_shape(runs, threshold=1e-5) is None


def test_minimal_shape_breaks_edge_ties_by_hidden_nodes():
    runs = pd.DataFrame({"shape": ["[2,1,2,1]", "[2,2,1]"], "test_rmse": [1e-3, 2e-3]})  # both 6 edges
    assert minimal_shape(runs)["shape"] == "[2,2,1]"  # 2 hidden nodes against 3
