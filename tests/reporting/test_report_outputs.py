"""Tables and figures written from a made-up runs table, complete or partial."""

import pandas as pd
import pytest

from kan.reporting import figures
from kan.reporting.summaries import grid_summary, special_summary
from kan.reporting.tables import write_tables

PNG = b"\x89PNG\r\n\x1a\n"
GRIDS = (3, 5, 10, 20)
U_SHAPE = {3: 3e-2, 5: 1e-2, 10: 4e-3, 20: 6e-3}  # [2,5,1]: best at G = 10, then overfits


def _all_experiments():
    rows = [
        {"variant": "pruned", "shape": "[2,2,1]", "initial_shape": "[2,5,1]", "n_params": 60, "test_rmse": 9.86e-3},
        {"variant": "pruned", "shape": "[2,3,1]", "initial_shape": "[2,5,1]", "n_params": 90, "test_rmse": 3e-3},
        {"variant": "pruned", "shape": "[2,1,1]", "initial_shape": "[2,5,1]", "n_params": 30, "test_rmse": 1e-9,
         "status": "diverged"},
        {"n_params": 150, "test_rmse": 8e-4},
        {"model": "mlp", "n_params": 21, "test_rmse": 2e-2},
        {"experiment": "feynman", "dataset": "I.6.20", "variant": "human", "shape": "[2,2,1,1]", "test_rmse": 1e-3},
        {"experiment": "feynman", "dataset": "I.6.20", "model": "mlp", "shape": "[2,20,1]", "n_params": 81,
         "test_rmse": 2e-3},
    ]
    rows += [{"experiment": "toy_scaling", "dataset": "xy", "variant": "human", "shape": "[2,2,1]", "grid": g,
              "n_params": 12 * (g + 5), "test_rmse": 1e-2 * (12 * (g + 5) / 50) ** -4.0} for g in GRIDS]
    rows += [{"experiment": "toy_scaling", "dataset": "xy", "model": "mlp", "shape": f"[2,{w},1]", "n_params": 4 * w + 1,
              "test_rmse": 1e-3} for w in (5, 20)]
    for shape, variant, rmse in (("[2,1,1]", "human", lambda g: 0.5 * g**-3.0), ("[2,5,1]", "unpruned", U_SHAPE.get)):
        rows += [{"experiment": "grid_extension", "dataset": "exp_sin_sq", "variant": variant, "shape": shape,
                  "grid": g, "steps": 5 * (k + 1), "test_rmse": rmse(g)} for k, g in enumerate(GRIDS)]
    return rows


@pytest.fixture
def runs(make_runs):
    return make_runs(*_all_experiments())


@pytest.fixture
def histories(runs):
    """The history of the longest [2,1,1] run only: the [2,5,1] staircase has none to draw."""
    run = runs[(runs["experiment"] == "grid_extension") & (runs["shape"] == "[2,1,1]")].iloc[-1]
    steps = range(1, run["steps"] + 1)
    grids = [GRIDS[(s - 1) // 5] for s in steps]
    return pd.DataFrame({
        "run_id": run["run_id"], "step": list(steps), "grid": grids,
        "train_rmse": [0.4 * g**-3.0 for g in grids], "test_rmse": [0.5 * g**-3.0 for g in grids],
        "train_loss": 0.0, "test_loss": 0.0, "regularization": 0.0,
    })


def _is_png(path):
    return path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def test_special_summary_rules(runs):
    row = special_summary(runs[runs["status"] == "ok"]).set_index("dataset").loc["jv"]
    assert (row["min_kan_shape"], row["min_kan_rmse"]) == ("[2,2,1]", 9.86e-3)
    assert (row["best_kan_shape"], row["best_kan_rmse"]) == ("[2,3,1]", 3e-3)  # pruned, "ok" runs only
    assert (row["any_kan_shape"], row["any_kan_rmse"]) == ("[2,5,1]", 8e-4)  # any KAN variant
    assert row["mlp_rmse"] == 2e-2


def test_grid_summary_finds_the_best_grid_and_the_exponent(runs):
    summary = grid_summary(runs).set_index("shape")
    assert summary.loc["[2,5,1]", "best_grid"] == 10
    assert summary.loc["[2,5,1]", "final_test_rmse"] == U_SHAPE[20]  # the finest grid's, past the best
    assert summary.loc["[2,1,1]", "test_rmse_exponent"] == pytest.approx(3.0)


def test_tables(runs, tmp_path):
    paths = write_tables(runs, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{t}.{ext}" for t in ("special_functions", "feynman", "toy_scaling", "grid_extension")
                           for ext in ("md", "csv"))
    special = (tmp_path / "special_functions.md").read_text(encoding="utf-8")
    assert "| jv | [2,2,1] | 9.86e-03 | [2,3,1] | 3.00e-03 |" in special
    assert "1 run(s) with a status other than \"ok\" are left out" in special
    scaling = pd.read_csv(tmp_path / "toy_scaling.csv")
    assert scaling.loc[0, "kan_exponent"] == pytest.approx(4.0)
    assert scaling.loc[0, "mlp_points"] == 1  # equal errors: the smaller MLP dominates


def test_tables_skip_absent_experiments(make_runs, tmp_path):
    paths = write_tables(make_runs({"model": "mlp"}), tmp_path)
    assert [p.name for p in paths] == ["special_functions.md", "special_functions.csv"]


def test_figures(runs, histories, tmp_path):
    pareto = figures.pareto_frontiers(runs, tmp_path)
    assert [p.name for p in pareto] == ["pareto_feynman_I.6.20.png", "pareto_special_jv.png"]
    scaling = figures.scaling_plot(runs, tmp_path)
    assert [p.name for p in scaling] == ["scaling_xy.png"]
    stairs = figures.staircase(runs, histories, tmp_path)
    assert [p.name for p in stairs] == ["staircase_exp_sin_sq_2_1_1.png", "grid_rmse_exp_sin_sq.png"]
    assert all(_is_png(p) for p in pareto + scaling + stairs)


def test_figures_with_partial_data(make_runs, histories, tmp_path):
    only_special = make_runs({}, {"model": "mlp", "test_rmse": 3e-2})
    assert [p.name for p in figures.pareto_frontiers(only_special, tmp_path)] == ["pareto_special_jv.png"]
    assert figures.scaling_plot(only_special, tmp_path) == []
    assert figures.staircase(only_special, histories, tmp_path) == []


def test_log_axes_label_only_readable_ticks():
    """A Pareto axis spanning less than a decade (30-45 parameters) gets no minor-tick labels and
    its labels do not overlap (matplotlib's default printed "3×10¹4×10¹")."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([30, 35, 40, 45], [1e-3, 5e-4, 2e-4, 1e-4])
    ax.set(xscale="log", yscale="log")
    figures.readable_log_ticks(ax)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for axis in (ax.xaxis, ax.yaxis):
        low, high = sorted(axis.get_view_interval())
        assert all(not t.label1.get_text() for t in axis.get_minor_ticks())
        shown = [t.label1 for t in axis.get_major_ticks() if low <= t.get_loc() <= high and t.label1.get_text()]
        assert len(shown) >= 2  # something to read
        boxes = [label.get_window_extent(renderer) for label in shown]
        assert all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)
