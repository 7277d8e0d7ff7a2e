"""Exported formulas: normalisation identities, rounding, evaluation and scoring."""

import math

import numpy as np
import pytest
import sympy

from kan.formula import evaluate, formula_score, normalise, round_floats, score, shown_formulas

u, x, y = sympy.symbols("u x y")
POINTS = np.random.default_rng(0).uniform(0.1, 0.9, size=(50, 3))  # (u, x, y) rows inside every domain used


def _max_difference(a: sympy.Expr, b: sympy.Expr) -> float:
    values = evaluate([a, b], [u, x, y], POINTS)
    return float(np.max(np.abs(values[:, 0] - values[:, 1])))


def test_constant_factors_leave_the_argument_so_rounding_keeps_the_formula():
    exported = 0.917 * sympy.sqrt(1.19 * u + 1.19)  # √(u + 1) with its constant spread over two factors
    assert sympy.nsimplify(round_floats(exported, 2)) != sympy.sqrt(u + 1)  # rounding alone breaks it
    clean = normalise(exported)
    assert _max_difference(clean, exported) < 1e-14
    (root,) = [p for p in clean.atoms(sympy.Pow) if p.exp == sympy.Rational(1, 2)]
    assert sympy.nsimplify(root.base) == u + 1
    assert sympy.simplify(sympy.nsimplify(round_floats(clean, 2)) - sympy.sqrt(u + 1)) == 0


@pytest.mark.parametrize("exported, argument", [
    (0.5 * (2.0 * x - 3.0) ** 2, x - sympy.Rational(3, 2)),  # integer power: the signed factor leaves
    ((4.0 - 2.0 * x) ** 3, x - 2),
    (sympy.sqrt(4.0 - 2.0 * x), 2 - x),  # fractional power: only a positive factor may leave
    (1 / (2.0 * x + 4.0), x + 2),
    (sympy.Abs(1.5 - 3.0 * x), x - sympy.Rational(1, 2)),
])
def test_powers_and_absolute_values_are_written_with_a_unit_leading_term(exported, argument):
    clean = normalise(exported)
    assert _max_difference(clean, exported) < 1e-13
    bases = [p.base for p in clean.atoms(sympy.Pow)] + [a.args[0] for a in clean.atoms(sympy.Abs)]
    assert any(sympy.simplify(sympy.nsimplify(base) - argument) == 0 for base in bases), clean


def test_logarithms_and_exponentials_pull_constants_out():
    clean = normalise(sympy.log(2.0 * x + 4.0))
    shift, rest = clean.as_coeff_Add()
    assert float(shift) == pytest.approx(math.log(2.0), abs=1e-15)
    assert sympy.simplify(sympy.nsimplify(rest) - sympy.log(x + 2)) == 0
    shifted = normalise(sympy.exp(1.5 * x + 0.7 + 1e-20 * y))
    assert shifted.free_symbols == {x} and _max_difference(shifted, sympy.exp(1.5 * x + 0.7)) < 1e-14


def test_float_noise_below_the_resolution_is_dropped():
    assert normalise(sympy.sin(3.14 * x + 3.6e-17 * y + 2e-18) - 1.1e-16) == sympy.sin(3.14 * x)
    kept = normalise(sympy.sin(3.14 * x + 1e-3 * y))  # a real dependence stays
    assert kept.free_symbols == {x, y}


def test_a_large_factor_of_a_small_term_does_not_make_other_terms_noise():
    exported = 0.0158 * x + 2.9e8 * sympy.exp(-10.5 * y) + 3.6e-17 * y + 18.6  # the exponential is tiny where y > 2
    assert normalise(exported) == 0.0158 * x + 2.9e8 * sympy.exp(-10.5 * y) + 18.6
    # nor a constant: near y = 2.5 the edge 2.6e8·exp(-10.5y) + 0.1 is about 0.1, half of it the constant
    assert normalise(2.6e8 * sympy.exp(-10.5 * y) + 0.1) == 2.6e8 * sympy.exp(-10.5 * y) + 0.1
    # while float noise beside a bounded term still goes: exp(sin(πx)) lies in [1/e, e]
    bounded = 1.0 * sympy.exp(1.0 * sympy.sin(3.14159 * x))
    assert normalise(bounded - 1.1e-16) == normalise(bounded)


@pytest.mark.parametrize("function, phase", [(sympy.sin, 2 * math.pi), (sympy.sin, 7.0), (sympy.cos, 3.3),
                                             (sympy.cos, -4.0), (sympy.tan, 4.0)])
def test_periodic_phases_are_reduced(function, phase):
    exported = function(2.0 * x + phase)
    clean = normalise(exported)
    assert _max_difference(clean, exported) < 1e-12
    (reduced,) = clean.atoms(function)
    shift = reduced.args[0].as_coeff_Add()[0]
    assert abs(float(shift)) <= math.pi / 2 + 1e-12
    if phase == 2 * math.pi:
        assert clean == sympy.sin(2.0 * x)


def test_exact_expressions_are_left_alone():
    exact = sympy.sqrt(2 * x + 2) + sympy.sin(x + 2 * sympy.pi) + sympy.Rational(1, 3) * x
    assert normalise(exact) == exact
    with pytest.raises(ValueError, match="resolution must be >= 0"):
        normalise(x, resolution=-1.0)


def test_evaluate_and_score_formulas():
    data = np.column_stack([np.linspace(-1, 1, 11), np.linspace(0, 2, 11)])
    labels = (data[:, 0] * data[:, 1])[:, None]
    assert formula_score([x * y], ["x", "y"], data, labels) == pytest.approx(0.0, abs=1e-15)
    assert formula_score([x * y + 0.1], [x, y], data, labels) == pytest.approx(0.1)
    assert math.isnan(formula_score([sympy.log(x)], [x, y], data, labels))  # log of negatives: NaN
    assert score(np.eye(3) * 0.9, np.eye(3), classification=True) == 1.0
    with pytest.raises(ValueError, match=r"x must have shape \[n, 2\]"):
        evaluate([x], [x, y], data[:, :1])


def test_formulas_are_scored_as_kan_fit_takes_data():
    """One formula or a list; class indices or one-hot labels; variables that name the formula's
    symbols, each once (else a clear error, not a numpy TypeError or a silent merge)."""
    data = np.column_stack([np.linspace(-1, 1, 11), np.linspace(0, 2, 11)])
    assert formula_score(x * y, ["x", "y"], data, (data[:, 0] * data[:, 1])[:, None]) == pytest.approx(0.0, abs=1e-15)
    logits, classes = [x, y], (data[:, 1] > data[:, 0]).astype(np.int64)
    assert formula_score(logits, ["x", "y"], data, classes, classification=True) == 1.0
    assert formula_score(logits, ["x", "y"], data, np.eye(2)[classes], classification=True) == 1.0
    with pytest.raises(ValueError, match="the formulas use x, y, which the variables \\[a, b\\] do not name"):
        formula_score([x * y], ["a", "b"], data, data[:, :1])
    with pytest.raises(ValueError, match="variables must be distinct"):
        evaluate([x], ["x", "x"], data)


def test_shown_formulas_keep_a_gaussian_that_expansion_would_round_away():
    spike = [0.74 * sympy.exp(-(16.5 * x - 12.3) ** 2) + 0.003]  # exp(-12.3²) ≈ 1e-66 once expanded
    inputs = np.linspace(0.0, 1.0, 201)[:, None]
    labels = np.asarray(sympy.lambdify(x, spike[0], "numpy")(inputs[:, 0]))[:, None]
    (shown,), rmse = shown_formulas(spike, [x], inputs, labels, False, digits=2, bound=0.01)
    assert shown == 0.74 * sympy.exp(-(16.5 * x - 12.3) ** 2) and rmse == pytest.approx(0.003, rel=0.01)


def test_shown_formulas_expand_and_add_decimals_only_where_needed():
    inputs = np.linspace(-1.0, 1.0, 201)[:, None]
    product = [0.25 * (1.0 * x + 2.0) ** 2 - 0.25 * (1.0 * x - 2.0) ** 2]  # 2x once expanded
    (shown,), rmse = shown_formulas(product, [x], inputs, 2.0 * inputs, False, digits=2, bound=1e-3)
    assert shown == 2.0 * x and rmse < 1e-12
    scaled = [3.218 * sympy.sqrt(0.0964 * x**2 + 1.0)]  # 2 decimals (0.1) miss by 3e-3, 3 (0.096) by 3e-4
    labels = np.asarray(sympy.lambdify(x, scaled[0], "numpy")(inputs[:, 0]))[:, None]
    (shown,), rmse = shown_formulas(scaled, [x], inputs, labels, False, digits=2, bound=1e-3)
    assert shown == 3.218 * sympy.sqrt(0.096 * x**2 + 1.0) and rmse < 1e-3


def test_a_sum_of_squares_keeps_its_formula_through_rounding():
    """The distance as a snapped KAN exports it: each square with its own factor, one more outside."""
    x1, x2, x3, x4 = sympy.symbols("x1:5")
    exported = 1.307 * sympy.sqrt(0.2 * (1.712 * x1 - 1.712 * x2) ** 2 + 0.3 * (1.3978 * x3 - 1.3978 * x4) ** 2)
    distance = sympy.sqrt((x1 - x2) ** 2 + (x3 - x4) ** 2)
    assert sympy.nsimplify(round_floats(sympy.expand(exported), 2)) != sympy.expand(distance)
    shown = sympy.nsimplify(round_floats(sympy.expand(normalise(exported)), 2))
    assert sympy.simplify(shown - distance) == 0
