"""Supervised interpretability (§4.1): the experiment's contract and its pipeline on xy."""

import json

import pandas as pd
import pytest
import sympy

from kan import KAN
from kan.science import interpretability as interp


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("interpretability")
    return interp.run_experiment(interp.SMALL, out_dir), out_dir


def test_xy_prunes_to_two_hidden_nodes_and_its_formula_is_recovered(small_run):
    summary, out_dir = small_run
    assert summary["xy.shape_match"] == 1.0 and summary["xy.hidden_nodes"] == 2.0
    assert summary["xy.recovered"] == 1.0 and summary["n_recovered"] == 1.0
    assert summary["xy.symbolic_rmse"] < 1e-6 < summary["xy.test_rmse"] < 1e-2  # snapping beats the splines
    row = pd.read_csv(out_dir / "tables" / "interpretability.csv").iloc[0]
    x, y = sympy.symbols("x y")
    assert sympy.simplify(sympy.nsimplify(sympy.sympify(row["formula"])) - x * y) == 0


def test_table_figures_and_summary_agree(small_run):
    summary, out_dir = small_run
    assert json.loads((out_dir / "summary.json").read_text()) == pytest.approx(summary)
    table = pd.read_csv(out_dir / "tables" / "interpretability.csv")
    assert list(table["task"]) == ["xy"]
    row = table.iloc[0]
    assert (row["paper_shape"], row["found_shape"], row["shape_match"], row["recovered"]) == (
        "[2, 2, 1]", "[2, 2, 1]", "yes", "yes")
    assert row["numeric"] == pytest.approx(summary["xy.test_rmse"])
    assert row["symbolic"] == pytest.approx(summary["xy.symbolic_rmse"])
    assert "| xy | x*y |" in (out_dir / "tables" / "interpretability.md").read_text()
    for name in ("xy", "xy_symbolic"):
        assert (out_dir / "figures" / f"{name}.png").stat().st_size > 1000


@pytest.mark.parametrize("settings, named", [
    ({"bogus": 1}, "bogus"),
    ({"widths": {"xz": [2, 5, 1]}}, "xz"),
    ({"tasks": ["xy"], "widths": {"xy": [3, 5, 1]}}, "xy"),
    ({"libraries": {"xy": ["x", "warp"]}}, "warp"),
    ({"prune_rounds": 0}, "prune_rounds"),
])
def test_bad_settings_raise_a_clear_error(tmp_path, settings, named):
    with pytest.raises(ValueError, match="interpretability") as error:
        interp.run_experiment(settings, tmp_path)
    assert named in str(error.value)
    assert not (tmp_path / "summary.json").exists()


def test_per_task_settings_replace_only_their_own_defaults():
    config = interp.InterpretabilityConfig(widths={"dist_4d": (4, 5, 5, 1)}, lambs={"xy": 0.02})
    assert config.widths["dist_4d"] == (4, 5, 5, 1) and config.widths["xy"] == (2, 5, 1)
    assert config.lambs["xy"] == 0.02 and config.lambs["x_div_y"] == interp.DEFAULT_LAMBS["x_div_y"]
    assert config.library_of("first_digit") == ("gaussian",) and "0" not in config.library_of("xy")


def test_further_prune_rounds_reach_the_minimal_shape_of_the_interactive_example():
    """One round often keeps a second, split hidden node on exp(sin(πx) + y²); more rounds remove it."""
    config = interp.InterpretabilityConfig(tasks=("exp_sin_sq",), prune_rounds=3, refine_steps=10)
    candidate = interp.sparsify_and_prune("exp_sin_sq", interp.task_data("exp_sin_sq", config), 0, config)
    assert candidate.model.width == [2, 1, 1] and candidate.train_rmse < 1e-2


def _candidate(width, rmse):
    return interp.Candidate(KAN(width, dtype="float64"), rmse, 0)


def test_choose_prefers_the_sparsest_restart_that_still_fits():
    fits, sparse_but_broken, sparse = _candidate([4, 3, 1, 1], 3e-3), _candidate([4, 2, 1, 1], 0.2), _candidate(
        [4, 2, 1, 1], 9e-3)
    assert interp.choose([fits, sparse_but_broken], accept_factor=4.0) is fits
    assert interp.choose([fits, sparse_but_broken, sparse], accept_factor=4.0) is sparse
    assert interp.choose([fits, sparse], accept_factor=2.0) is fits


def test_digit_spikes_must_peak_in_their_own_interval():
    x = sympy.Symbol("x")
    centred = [sympy.exp(-((x - (k + 0.5) / 10) * 30) ** 2) for k in range(10)]
    assert interp.spikes_in_place(centred, x)
    assert not interp.spikes_in_place(centred[1:] + centred[:1], x)
