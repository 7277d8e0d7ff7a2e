"""The 27 dimensionless Feynman equations of the paper's table (§3.3).

Each equation is defined once as a sympy expression; data come from ``sympy.lambdify``
of that expression, so the recorded formula and the labels cannot disagree. The paper
states only u, v in (-1, 1) for I.16.6; every other range is ours, chosen so that the
expression is real and finite (arcsin arguments |.| <= 0.8 or 0.9, denominators and
square-root arguments bounded away from 0) and so that the paper's human-constructed shape can
represent it (a quotient computed by a [2,1,1] KAN as exp(ln a - ln b) needs a, b > 0).
"""

from __future__ import annotations

import sympy as sp

from kan.data.io import GeneratedData
from kan.data.sampling import SIZE_NOTE, SymbolicTask, ranges_note, symbolic_data
from kan.data.spec import lookup_task, merge_spec

FAMILY = "feynman"
PI = float(sp.pi)

a, b, c, d, e, f = sp.symbols("a b c d e f")
n, n0 = sp.symbols("n n0")
theta, theta1, theta2, sigma = sp.symbols("theta theta1 theta2 sigma")
alpha, beta, delta = sp.symbols("alpha beta delta")

UNIT = (-1.0, 1.0)
ANGLE = (-PI, PI)
POSITIVE = (0.5, 2.0)


def _equation(
    expr: sp.Expr,
    ranges: dict[sp.Symbol, tuple[float, float]],
    shape: tuple[int, ...],
    why: str = "",
) -> SymbolicTask:
    """A Feynman task; ``ranges`` is in the paper's variable order, ``why`` explains them."""
    named = {var.name: bounds for var, bounds in ranges.items()}
    return SymbolicTask({"target": expr}, named, shape=shape, deviations=(ranges_note(named, why),))


_GAUSS_NORM = sp.sqrt(2 * sp.pi * sigma**2)
_HALF_DIFF = (b - c) / 2

TASKS: dict[str, SymbolicTask] = {
    "I.6.20": _equation(
        sp.exp(-(theta**2) / (2 * sigma**2)) / _GAUSS_NORM,
        {theta: UNIT, sigma: POSITIVE}, (2, 2, 1, 1), "sigma > 0",
    ),
    "I.6.20b": _equation(
        sp.exp(-((theta - theta1) ** 2) / (2 * sigma**2)) / _GAUSS_NORM,
        {theta: UNIT, theta1: UNIT, sigma: POSITIVE}, (3, 2, 2, 1, 1), "sigma > 0",
    ),
    "I.9.18": _equation(
        a / ((b - 1) ** 2 + (c - d) ** 2 + (e - f) ** 2),
        {a: POSITIVE, b: (-1.0, 0.5), c: UNIT, d: UNIT, e: UNIT, f: UNIT},
        (6, 4, 2, 1, 1),
        "denominator >= 0.25; a > 0 because the human shape [6,4,2,1,1] computes exp(ln a - ln D) "
        "from a and the denominator D (with a of both signs it cannot be the quotient)",
    ),
    "I.12.11": _equation(1 + a * sp.sin(theta), {a: UNIT, theta: ANGLE}, (2, 2, 2, 1)),
    "I.13.12": _equation(a * (1 / b - 1), {a: UNIT, b: POSITIVE}, (2, 2, 1), "b > 0"),
    "I.15.3x": _equation(
        (1 - a) / sp.sqrt(1 - b**2), {a: UNIT, b: (-0.9, 0.9)}, (2, 2, 1, 1),
        "1 - b^2 >= 0.19",
    ),
    "I.16.6": SymbolicTask(
        {"target": (a + b) / (1 + a * b)},
        {"a": UNIT, "b": UNIT},
        shape=(2, 2, 2, 2, 2, 1),
        deviations=("a, b uniform on [-1, 1] as stated by the paper (open interval (-1, 1))",),
    ),
    "I.18.4": _equation(
        (1 + a * b) / (1 + a), {a: (0.0, 2.0), b: UNIT}, (2, 2, 2, 1, 1), "1 + a >= 1"
    ),
    "I.26.2": _equation(
        sp.asin(n * sp.sin(theta2)), {n: (0.0, 0.9), theta2: (-PI / 2, PI / 2)},
        (2, 2, 2, 1, 1), "|n sin(theta2)| <= 0.9",
    ),
    "I.27.6": _equation(
        1 / (1 + a * b), {a: (0.0, 2.0), b: (0.0, 2.0)}, (2, 2, 1, 1), "1 + ab >= 1"
    ),
    "I.29.16": _equation(
        sp.sqrt(1 + a**2 - 2 * a * sp.cos(theta1 - theta2)),
        {a: (0.0, 0.8), theta1: ANGLE, theta2: ANGLE},
        (3, 2, 2, 3, 2, 1, 1), "square-root argument >= (1 - a)^2 >= 0.04",
    ),
    "I.30.3": _equation(
        sp.sin(n * theta / 2) ** 2 / sp.sin(theta / 2) ** 2,
        {n: (1.0, 3.0), theta: (0.5, 3.0)},
        (2, 3, 2, 2, 1, 1), "sin^2(theta/2) >= 0.06",
    ),
    "I.30.5": _equation(
        sp.asin(a / n), {a: (0.25, 1.0), n: (1.25, 3.0)}, (2, 1, 1),
        "|a/n| <= 0.8; a > 0 because the human shape [2,1,1] computes arcsin(exp(ln a - ln n))",
    ),
    "I.37.4": _equation(
        1 + a + 2 * sp.sqrt(a) * sp.cos(delta), {a: (0.1, 2.0), delta: ANGLE}, (2, 3, 2, 1),
        "a >= 0.1 keeps sqrt(a) smooth",
    ),
    "I.40.1": _equation(n0 * sp.exp(-a), {n0: (0.0, 2.0), a: UNIT}, (2, 1, 1)),
    "I.44.4": _equation(n * sp.log(a), {n: (0.0, 2.0), a: POSITIVE}, (2, 2, 1), "a > 0"),
    "I.50.26": _equation(
        sp.cos(a) + alpha * sp.cos(a) ** 2, {a: ANGLE, alpha: UNIT}, (2, 2, 3, 1)
    ),
    "II.2.42": _equation((a - 1) * b, {a: UNIT, b: UNIT}, (2, 2, 1)),
    "II.6.15a": _equation(
        c * sp.sqrt(a**2 + b**2) / (4 * sp.pi), {a: UNIT, b: (0.5, 1.5), c: UNIT},
        (3, 2, 2, 2, 1), "a^2 + b^2 >= 0.25 keeps the square root smooth",
    ),
    "II.11.7": _equation(
        n0 * (1 + a * sp.cos(theta)), {n0: (0.0, 2.0), a: UNIT, theta: ANGLE},
        (3, 3, 3, 2, 2, 1), "the paper's II.11.7 is AI Feynman's II.11.17",
    ),
    "II.11.27": _equation(
        n * alpha / (1 - n * alpha / 3), {n: UNIT, alpha: UNIT}, (2, 2, 1, 2, 1),
        "1 - n alpha / 3 >= 2/3",
    ),
    "II.35.18": _equation(
        n0 / (sp.exp(a) + sp.exp(-a)), {n0: (0.0, 2.0), a: (-2.0, 2.0)}, (2, 1, 1)
    ),
    "II.36.38": _equation(a + alpha * b, {a: UNIT, alpha: UNIT, b: UNIT}, (3, 3, 1)),
    "II.38.3": _equation(
        a / b, {a: POSITIVE, b: POSITIVE}, (2, 1, 1),
        "a, b > 0 because the human shape [2,1,1] computes exp(ln a - ln b)",
    ),
    "III.9.52": _equation(
        a * sp.sin(_HALF_DIFF) ** 2 / _HALF_DIFF**2, {a: UNIT, b: (1.0, 3.0), c: (-1.0, 0.0)},
        (3, 2, 3, 1, 1), "(b - c)/2 in [0.5, 2] avoids the removable 0/0 at b = c",
    ),
    "III.10.19": _equation(sp.sqrt(1 + a**2 + b**2), {a: UNIT, b: UNIT}, (2, 1, 1)),
    "III.17.37": _equation(
        beta * (1 + alpha * sp.cos(theta)), {alpha: UNIT, beta: UNIT, theta: ANGLE},
        (3, 3, 3, 2, 2, 1),
    ),
}



def generate(name: str, spec: dict | None, seed: int) -> GeneratedData:
    """Generate Feynman equation ``name`` (e.g. ``"I.6.20"``) with ``spec`` overrides."""
    task = lookup_task(TASKS, name, family=FAMILY)
    merged = merge_spec(task.defaults(), spec, where=f"{FAMILY}/{name}")
    return symbolic_data(
        task, family=FAMILY, name=name, spec=merged, seed=seed, deviations=(SIZE_NOTE,)
    )
