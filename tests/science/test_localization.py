"""Mobility edges with sigmoid-output KANs (paper §4.4): accuracies, formula export, figure."""

import numpy as np
import pandas as pd
import pytest
import sympy
import torch

from kan.science import localization as loc

QUICK = loc.LocalizationConfig(n_realizations=40, n_train=2000, n_test=1000, steps=30, retrain_steps=10,
                               symbolic_samples=300)


@pytest.fixture(scope="module")
def mosaic() -> loc.LocalizationResult:
    return loc.run_system("mosaic", QUICK)


@pytest.fixture(scope="module")
def mosaic_table(mosaic) -> pd.DataFrame:
    return loc.accuracy_table(mosaic).set_index("method")


def test_mosaic_exact_edge_and_kan_classify_well(mosaic_table):
    assert mosaic_table.loc["exact", "test_accuracy"] >= 0.97
    assert mosaic_table.loc["KAN", "test_accuracy"] >= 0.90
    assert mosaic_table.loc["KAN", "width"] == "[2, 1, 1]"


def test_mosaic_auto_formula_is_close_to_the_kan(mosaic_table):
    kan = mosaic_table.loc["KAN", "test_accuracy"]
    assert mosaic_table.loc["auto", "test_accuracy"] >= kan - 0.05
    # the exported formula classifies like the snapped model it came from
    assert mosaic_table.loc["auto", "test_accuracy"] == pytest.approx(mosaic_table.loc["auto", "model_accuracy"], abs=0.01)
    assert mosaic_table.loc["guided", "test_accuracy"] >= kan - 0.08


def test_mosaic_formulas_use_only_the_inputs(mosaic):
    for formula in mosaic.formulas:
        assert {str(s) for s in formula.expression.free_symbols} <= {"E", "lam"}


def test_edge_expression_matches_the_model_output():
    """A hand-snapped [2, 1, 1] model: ``g > 0`` exactly where its output exceeds 1/2."""
    model = loc.build_model((2, 1, 1), torch.rand(50, 2, dtype=torch.float64) * 4 + 0.5, loc.LocalizationConfig())
    model.layers[0].set_symbolic(0, 0, "abs", (1.0, 0.0, -1.0, 0.0))
    model.layers[0].set_symbolic(1, 0, "1/x", (1.0, 0.0, 2.0, 0.0))
    model.layers[1].set_symbolic(0, 0, "sigmoid", (3.0, 0.5, 0.8, 0.05))
    expr = loc.edge_expression(model, ["E", "lambda"])
    frame = pd.DataFrame({"E": np.linspace(-5, 5, 400), "lambda": np.linspace(0.4, 6, 400)[::-1]})
    with torch.no_grad():
        output = model(torch.tensor(frame.to_numpy()))[:, 0].numpy()
    np.testing.assert_array_equal(loc.formula_extended(expr, frame, ["E", "lambda"]), output > 0.5)
    E, lam = sympy.symbols("E lam", real=True)
    expected = 3 * (2 / lam - sympy.Abs(E)) + 0.5 - sympy.log(0.5625 / 0.4375)  # (1/2 - d) / c = 0.5625
    for point in ({E: 1.3, lam: 0.7}, {E: -4.0, lam: 2.5}):
        assert float(expr.subs(point)) == pytest.approx(float(expected.subs(point)))


def test_mobility_edge_figure_is_written(mosaic, tmp_path):
    path = loc.plot_mobility_edges({"mosaic": mosaic}, tmp_path / "edges.png")
    assert path.stat().st_size > 10_000


def test_sigmoid_output_needs_a_final_single_node():
    with pytest.raises(ValueError, match="ending in"):
        loc.build_model((2, 3), torch.zeros(4, 2, dtype=torch.float64), QUICK)


@pytest.mark.slow
def test_gaam_kan_and_guided_formula():
    result = loc.run_system("gaam", QUICK)
    table = loc.accuracy_table(result).set_index("method")
    assert table.loc["exact", "test_accuracy"] >= 0.97
    assert table.loc["KAN", "test_accuracy"] >= 0.90
    assert table.loc["guided", "test_accuracy"] >= 0.80
    guided = next(f for f in result.formulas if f.method == "guided")
    assert "phi" not in {str(s) for s in guided.expression.free_symbols}  # the recipe cuts φ


@pytest.mark.slow
def test_maam_guided_formula_uses_cosh_and_classifies_well():
    result = loc.run_system("maam", QUICK)
    table = loc.accuracy_table(result).set_index("method")
    assert table.loc["exact", "test_accuracy"] >= 0.97
    assert table.loc["KAN", "test_accuracy"] >= 0.95
    assert table.loc["guided", "test_accuracy"] >= 0.90
    guided = next(f for f in result.formulas if f.method == "guided")
    assert guided.expression.has(sympy.cosh)
