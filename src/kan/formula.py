"""Exported formulas: normalised for reading, rounded, evaluated and scored on data, shown.

:func:`normalise` rewrites a formula from :func:`kan.symbolic.symbolic_formula` into the same
function written the way a person would: constant factors pulled out of arguments
(``0.917·√(1.19u + 1.19)`` → ``1.0003·√(u + 1)``), float noise far below the fit's resolution
dropped (``sin(3.14x + 3.6e-17·y)`` → ``sin(3.14x)``), periodic phases reduced
(``sin(u + 2π)`` → ``sin(u)``). Its values agree with the input's to that resolution.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import sympy

RESOLUTION = 1e-9  # a linear term this much smaller than the largest in its sum is float noise


def normalise(expr: sympy.Expr, resolution: float = RESOLUTION) -> sympy.Expr:
    """``expr`` with constant factors pulled out of arguments, noise dropped and phases reduced.

    Bottom-up, on every subexpression: in a sum, a multiple of one variable whose factor is below
    ``resolution`` × the largest such factor is dropped (inputs of comparable size assumed), and so
    is a constant below ``resolution`` × the largest factor of a term that factor sizes (a multiple
    of a power of a variable or of a bounded expression such as sin or exp(sin); not
    ``2.6e8·exp(-10.5y)``, small where y > 2); ``(k·u)^p`` becomes
    ``k^p·u^p`` (``k`` the float factor of the expanded argument's leading term, taken positive
    unless ``p`` is an integer), likewise ``|k·u|``, ``log(k·u) = log k + log u`` and
    ``exp(u + b) = e^b·exp(u)``; ``sin``/``cos`` phases are reduced into (-π/2, π/2] (a shift
    by π flips the sign; ``cos(u - π/2)`` becomes ``sin(u)``) and ``tan`` phases modulo π.
    Exact (integer, rational) constants are left as they are.
    """
    if resolution < 0:
        raise ValueError(f"resolution must be >= 0, got {resolution}")
    return _normalised(sympy.sympify(expr), resolution)


def _normalised(expr: sympy.Expr, resolution: float) -> sympy.Expr:
    if expr.is_Atom or not expr.args:
        return expr
    expr = expr.func(*(_normalised(arg, resolution) for arg in expr.args))
    if expr.is_Add:
        return _without_noise(expr, resolution)
    if expr.is_Pow:
        return _power_pulled(expr, resolution)
    if isinstance(expr, sympy.Abs):
        k = _leading_factor(expr.args[0])
        return abs(k) * sympy.Abs(_divided(expr.args[0], k, resolution)) if k is not None else expr
    if isinstance(expr, sympy.log):
        k = _leading_factor(expr.args[0])
        return sympy.log(abs(k)) + sympy.log(_divided(expr.args[0], abs(k), resolution)) if k is not None else expr
    if isinstance(expr, sympy.exp):
        shift, rest = expr.args[0].as_coeff_Add()
        return sympy.exp(shift) * sympy.exp(rest) if shift.is_Float and shift != 0 else expr
    if isinstance(expr, (sympy.sin, sympy.cos, sympy.tan)):
        return _phase_reduced(expr, resolution)
    return expr


def _coefficient(term: sympy.Expr) -> sympy.Number:
    return term.as_coeff_Mul()[0]


def _is_linear(term: sympy.Expr) -> bool:
    """A multiple of one variable: such terms' factors are comparable as sizes."""
    return term.as_coeff_Mul()[1].is_Symbol


_BOUNDED = (sympy.sin, sympy.cos, sympy.tanh, sympy.atan)  # |f| <= 2 whatever the argument


def _bounded(expr: sympy.Expr) -> bool:
    """Whether ``expr`` stays within fixed bounds whatever its inputs: a number, sin, cos, tanh,
    arctan, and exp, cosh, sums and products of bounded expressions (``exp(sin(πx))``)."""
    if expr.is_Number or isinstance(expr, _BOUNDED):
        return True
    if isinstance(expr, (sympy.exp, sympy.cosh)):
        return _bounded(expr.args[0])
    return isinstance(expr, (sympy.Add, sympy.Mul)) and all(_bounded(arg) for arg in expr.args)


def _sized(term: sympy.Expr) -> bool:
    """A multiple of a power of one variable (inputs of comparable size assumed) or of a bounded
    expression: its factor tells its size, unlike ``2.6e8·exp(-10.5y)``'s."""
    rest = term.as_coeff_Mul()[1]
    return rest.is_Symbol or (rest.is_Pow and rest.base.is_Symbol) or _bounded(rest)


def _without_noise(total: sympy.Expr, resolution: float) -> sympy.Expr:
    """The sum without its noise: multiples of one variable whose factor is below ``resolution`` ×
    the largest such factor, and a constant below ``resolution`` × the largest factor of a term
    whose factor tells its size (:func:`_sized`). Other terms stay, and do not make a constant
    noise: their factor says nothing of their size (``2.9e8·exp(-10.5y)`` is small)."""
    factors = [abs(float(_coefficient(term))) for term in total.args]
    linear = max((f for f, term in zip(factors, total.args) if _is_linear(term)), default=0.0)
    sized = max((f for f, term in zip(factors, total.args) if _sized(term)), default=0.0)

    def noise(factor: float, term: sympy.Expr) -> bool:
        if term.is_Number:
            return factor < resolution * sized
        return _is_linear(term) and factor < resolution * linear

    return sympy.Add(*(term for factor, term in zip(factors, total.args) if not noise(factor, term)))


def _leading_factor(argument: sympy.Expr) -> sympy.Float | None:
    """The float factor of the leading non-constant term of ``argument`` expanded (so a sum of
    squares gets its leading square's factor 1), or None when there is none to pull (no such term,
    an exact factor, or a factor of magnitude 1 or 0)."""
    terms = [t for t in sympy.Add.make_args(sympy.expand(argument)) if not t.is_Number]
    if not terms:
        return None
    k = _coefficient(sympy.Add(*terms).as_ordered_terms()[0])
    return k if k.is_Float and abs(float(k)) not in (0.0, 1.0) else None


def _divided(argument: sympy.Expr, k: sympy.Float, resolution: float) -> sympy.Expr:
    """``argument / k`` distributed over its terms, a factor 1.0 left out (``(1.19u + 1.19)/1.19``
    is ``u + 1.0``)."""
    terms = [_unit_factor_dropped(term / k) for term in sympy.Add.make_args(argument)]
    return _without_noise(sympy.Add(*terms), resolution) if len(terms) > 1 else terms[0]


def _unit_factor_dropped(term: sympy.Expr) -> sympy.Expr:
    factor, rest = term.as_coeff_Mul()
    if rest == 1 or abs(float(factor)) != 1.0:
        return term
    return rest if factor > 0 else -rest


def _power_pulled(power: sympy.Expr, resolution: float) -> sympy.Expr:
    base, exponent = power.args
    k = _leading_factor(base)
    if k is None:
        return power
    k = k if exponent.is_integer else abs(k)
    return k**exponent * _divided(base, k, resolution) ** exponent


def _phase_reduced(expr: sympy.Expr, resolution: float) -> sympy.Expr:
    """``sin``/``cos``/``tan`` of ``u + b`` with the float phase ``b`` reduced (see :func:`normalise`);
    a ``cos`` left with a phase of ±π/2 (up to noise) is written as the ``∓sin`` it is."""
    phase, rest = expr.args[0].as_coeff_Add()
    if not phase.is_Float or rest == 0:
        return expr
    turns = round(float(phase) / math.pi)
    function, phase = expr.func, float(phase) - turns * math.pi
    sign = 1 if function == sympy.tan or turns % 2 == 0 else -1
    if function == sympy.cos and abs(abs(phase) - math.pi / 2) <= resolution * abs(float(_coefficient(rest))):
        function, sign, phase = sympy.sin, -sign * int(math.copysign(1, phase)), 0.0
    reduced = sympy.Add(rest, sympy.Float(phase)) if phase else rest
    reduced = _without_noise(reduced, resolution) if reduced.is_Add else reduced
    return sign * function(reduced)


def round_floats(expr: sympy.Expr, digits: int) -> sympy.Expr:
    """``expr`` with every float rounded to ``digits`` decimal places.

    Floats that round to zero are dropped first, so that sympy folds the constants they kept
    apart (``1.01·(0.99·x + 1e-17)`` → ``0.9999·x``) at full precision before anything is rounded.
    """
    for _ in range(10):
        floats = expr.atoms(sympy.Float)
        tiny = {f: sympy.Integer(0) for f in floats if abs(float(f)) < 0.5 * 10.0**-digits}
        rounded = expr.xreplace(tiny or {f: sympy.Float(round(float(f), digits)) for f in floats})
        if rounded == expr:
            break
        expr = rounded
    return expr


def distinct_symbols(variables: Sequence[sympy.Symbol | str]) -> list[sympy.Symbol]:
    """``variables`` as sympy symbols (names become symbols); raises ``ValueError`` on a repeated one."""
    symbols = [sympy.Symbol(v) if isinstance(v, str) else v for v in variables]
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"variables must be distinct, got {symbols}")
    return symbols


def evaluate(formulas: Sequence[sympy.Expr] | sympy.Expr, variables: Sequence[sympy.Symbol | str],
             x: np.ndarray) -> np.ndarray:
    """The formulas (or one formula) at the rows of ``x`` ``[n, n_in]`` (numpy), as ``[n, n_out]``;
    NaN where undefined. ``variables`` name the columns of ``x``: distinct, and covering every
    symbol of the formulas."""
    formulas = [formulas] if isinstance(formulas, sympy.Basic) else list(formulas)
    symbols = distinct_symbols(variables)
    unknown = sorted(map(str, set().union(*(f.free_symbols for f in formulas)) - set(symbols)))
    if unknown:
        raise ValueError(f"the formulas use {', '.join(unknown)}, which the variables {symbols} do not name")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(symbols):
        raise ValueError(f"x must have shape [n, {len(symbols)}] for the variables {symbols}, got {list(x.shape)}")
    columns = []
    with np.errstate(all="ignore"):
        for formula in formulas:
            values = sympy.lambdify(symbols, formula, "numpy")(*x.T)
            columns.append(np.broadcast_to(np.asarray(values, dtype=np.float64), (len(x),)))
    return np.stack(columns, axis=1)


def score(prediction: np.ndarray, labels: np.ndarray, classification: bool = False) -> float:
    """RMSE of ``prediction`` against ``labels`` (both ``[n, n_out]``), or for ``classification`` the
    accuracy of its argmax against the labels: class indices ``[n]`` (as :func:`kan.fit` takes
    them) or one-hot ``[n, n_out]``; NaN if a prediction is not finite."""
    prediction, labels = np.asarray(prediction, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if classification and labels.ndim == 1 and prediction.ndim == 2 and len(labels) == len(prediction):
        labels = np.eye(prediction.shape[1])[labels.astype(np.int64)]  # class indices as one-hot rows
    if prediction.shape != labels.shape:
        raise ValueError(f"prediction has shape {list(prediction.shape)} but labels {list(labels.shape)}")
    if not np.isfinite(prediction).all():
        return math.nan
    if classification:
        return float((prediction.argmax(axis=1) == labels.argmax(axis=1)).mean())
    return float(np.sqrt(np.mean((prediction - labels) ** 2)))


def formula_score(formulas: Sequence[sympy.Expr] | sympy.Expr, variables: Sequence[sympy.Symbol | str], x: np.ndarray,
                  labels: np.ndarray, classification: bool = False) -> float:
    """:func:`score` of the formulas evaluated at ``x`` (tensors are accepted: they are read as numpy)."""
    return score(evaluate(formulas, variables, np.asarray(x)), np.asarray(labels), classification)


def _badness(value: float, classification: bool) -> float:
    """Lower is better; NaN is worst."""
    if math.isnan(value):
        return math.inf
    return -value if classification else value


def _whole_powers(expr: sympy.Expr) -> sympy.Expr:
    """``x**1.0`` as ``x``, ``y**-1.0`` as ``1/y``: whole float exponents as integers."""
    return expr.replace(lambda e: e.is_Pow and e.exp.is_Float and float(e.exp).is_integer(),
                        lambda e: e.base ** int(e.exp))


def shown_formulas(formulas: Sequence[sympy.Expr], variables: Sequence[sympy.Symbol], x: np.ndarray, y: np.ndarray,
                   classification: bool, digits: int, bound: float) -> tuple[list[sympy.Expr], float]:
    """The formulas as shown, and their :func:`score` on ``(x, y)``: rounded to the fewest decimals,
    from ``digits`` up to ``digits + 3``, whose badness (RMSE, or minus the accuracy) is at most
    ``bound`` (else to the most).

    At each precision the expanded formulas are rounded (terms fold at full precision first: xy
    shows as ``1.0*x*y``) unless the unexpanded ones score better. Expanding can hurt: sympy pulls
    constants out of exponentials, so a gaussian spike ``c·exp(-(a·x + b)²)`` becomes
    ``c·e^(-b²)·exp(-a²x² - 2abx)``, whose tiny factor rounds to 0.
    """
    forms = ([sympy.expand(f) for f in formulas], list(formulas))
    best: tuple[list[sympy.Expr], float] | None = None
    for places in range(digits, digits + 4):
        for exprs in forms:
            shown = [_whole_powers(round_floats(f, places)) for f in exprs]
            value = score(evaluate(shown, variables, x), y, classification)
            if best is None or _badness(value, classification) < _badness(best[1], classification):
                best = (shown, value)
        if _badness(best[1], classification) <= bound:
            break
    return best
