"""Science settings: impossible counts, sizes and seeds stop at config load, naming the key."""

from __future__ import annotations

import pytest

from kan.science.registry import resolve_settings


@pytest.mark.parametrize(("experiment", "settings", "message"), [
    ("pde", {"kan_steps": -3}, "kan_steps must be an integer >= 1, got -3"),
    ("pde", {"n_interior": 0}, "n_interior must be an integer >= 1, got 0"),
    ("pde", {"mlp_widths": [[2, 0, 1]]}, "mlp_widths must hold integers >= 1, got ((2, 0, 1),)"),
    ("pde", {"kan_steps": "5"}, "kan_steps must be an integer >= 1, got '5'"),
    ("pde", {"seed": -1}, "seed must be an integer >= 0, got -1"),
    ("continual", {"steps_per_phase": 0}, "steps_per_phase must be an integer >= 1, got 0"),
    ("continual", {"seeds": [0, -2]}, "seeds must hold integers >= 0, got (0, -2)"),
    ("interpretability", {"symbolic_samples": 0}, "symbolic_samples must be an integer >= 1, got 0"),
    ("interpretability", {"grids": {"xy": 0}}, "grids must hold integers >= 1"),
    ("unsupervised", {"n_samples": -5}, "n_samples must be an integer >= 1, got -5"),
    ("unsupervised", {"steps": 0}, "steps must be an integer >= 1, got 0"),
    ("knots", {"mlp_batch_size": 0}, "mlp_batch_size must be an integer >= 1, got 0"),
    ("knots", {"unsup_rows": 0}, "unsup_rows must be an integer >= 1, got 0"),
    ("localization", {"n_sites": -1}, "n_sites must be an integer >= 1, got -1"),
    ("localization", {"retrain_steps": 0}, "retrain_steps must be an integer >= 1, got 0"),
    ("pde", {"alpha": "0.01"}, "alpha must be a finite number >= 0, got '0.01'"),  # a quoted YAML number
    ("continual", {"lr": float("nan")}, "lr must be a finite number > 0, got nan"),
    ("continual", {"lr": -1.0}, "lr must be a finite number > 0, got -1.0"),
    ("knots", {"unsup_width": 0.0}, "unsup_width must be a finite number > 0, got 0.0"),
    ("knots", {"unsup_lambdas": [0.01, -1e-3]}, "unsup_lambdas must hold finite numbers >= 0, got (0.01, -0.001)"),
    ("localization", {"lamb": -1e-3}, "lamb must be a finite number >= 0, got -0.001"),
    ("unsupervised", {"test_fraction": 1.5}, "test_fraction must be a finite number in [0, 1], got 1.5"),
    ("interpretability", {"min_accuracy": 95}, "min_accuracy must be a finite number in [0, 1], got 95"),
    ("knots", {"unsup_lambdas": [0.01, "1e-3"]}, "unsup_lambdas must hold finite numbers >= 0, got (0.01, '1e-3')"),
    ("interpretability", {"threshold": True}, "threshold must be a finite number >= 0, got True"),
    ("pde", {"kan_grids": []}, "kan_grids must not be empty"),
    ("knots", {"unsup_seeds": []}, "unsup_seeds must not be empty"),
    ("interpretability", {"library": []}, "library must not be empty"),
])
def test_impossible_counts_are_named(experiment, settings, message):
    with pytest.raises(ValueError, match=f"science experiment '{experiment}'") as info:
        resolve_settings(experiment, settings)
    assert message in str(info.value)


@pytest.mark.parametrize(("experiment", "settings"), [
    ("unsupervised", {"warmup_steps": 0}),  # no warm-up phase
    ("knots", {"unsup_rows": None}),  # every row
    ("interpretability", {"digits": 0, "seed": 0}),
    ("knots", {"unsup_width": 2}),  # a float option given as a YAML integer is no count
])
def test_zero_none_and_integer_floats_where_they_mean_something(experiment, settings):
    assert resolve_settings(experiment, settings)
