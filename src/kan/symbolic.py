"""Symbolic snapping: fit ``c·f(a·x + b) + d`` to an edge, rank library functions, snap
edges, and export the model as sympy formulas.

Ranking (lower is better)::

    score = w · complexity − (1 − w) · min(log2(1 / (1 − R²)), MAX_BITS)

``log2(1/(1 − R²))`` is the fit's accuracy in bits; it is capped at ``MAX_BITS`` (16 bits,
1 − R² ≈ 1.5e-5) because beyond that a learned spline's own error decides, so candidates
that fit equally well are ordered by complexity and then by their order in ``LIBRARY`` (``x^2`` before
``cos`` for a parabola, ``sin`` before ``cos`` for a sine). ``w = weight_simple = 0.8``
makes one unit of complexity worth four bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import sympy
import torch
from torch import Tensor

from kan.levenberg import levenberg_marquardt
from kan.models import KAN
from kan.symbolic_library import LIBRARY, SymbolicFunction, get_function

MAX_BITS = 16.0
_TIE = 1e-12  # R² this close to the grid's best counts as a tie (degenerate affine directions)
_CHUNK = 250_000  # grid points x samples evaluated at once (cache-sized)
_RESOLUTION = 1e-7  # grid fits whose values vary less than this, relative to their size, are rejected
_POLISH_MIN_R2 = 0.9  # refining a poorer fit cannot change its rank

Affine = tuple[float, float, float, float]
Edge = tuple[int, int, int]  # (layer, input node, output node)


@dataclass(frozen=True)
class Suggestion:
    """One candidate for an edge: function name, fitted ``(a, b, c, d)``, R², rank score."""

    name: str
    params: Affine
    r2: float
    complexity: int
    score: float


def _as_function(fn: str | SymbolicFunction) -> SymbolicFunction:
    return fn if isinstance(fn, SymbolicFunction) else get_function(fn)


def _r2_grid(f: SymbolicFunction, x: Tensor, y: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """R² of the best ``c·f(a·x + b) + d`` for every grid point, ``[len(a), len(b)]``; bad fits get -inf."""
    y0 = y - y.mean()
    rows = max(1, _CHUNK // (len(b) * len(x)))
    out = []
    for start in range(0, len(a), rows):
        pre = a[start : start + rows, None, None] * x + b[None, :, None]  # [rows, nb, n]
        values = f.torch_fn(pre)
        scale = values.abs().amax(dim=-1)
        values = values - values.mean(dim=-1, keepdim=True)  # an inf or NaN makes the row's R² NaN
        spread = (values * values).sum(dim=-1)
        r2 = (values @ y0) ** 2 / (spread * (y0 @ y0))
        resolved = spread > len(x) * (_RESOLUTION * scale) ** 2  # else rounding, not f, shapes the values
        out.append(torch.where(resolved, torch.nan_to_num(r2, nan=-math.inf, posinf=-math.inf), -math.inf))
    return torch.cat(out)


def _linear_fit(f: SymbolicFunction, x: Tensor, y: Tensor, a: float, b: float) -> tuple[Affine, float]:
    """Least-squares ``(c, d)`` for fixed ``(a, b)`` and the resulting R² (-inf when not finite)."""
    values = f.torch_fn(a * x + b)
    v0 = values - values.mean()
    var = float(v0 @ v0)
    c = float(v0 @ (y - y.mean())) / var if var > 0 else 0.0
    d = float(y.mean() - c * values.mean())
    return (a, b, c, d), _r2(values * c + d, y)


def _r2(prediction: Tensor, y: Tensor) -> float:
    """Coefficient of determination; -inf for a non-finite prediction."""
    total = float(((y - y.mean()) ** 2).sum())
    residual = float(((prediction - y) ** 2).sum())
    if not math.isfinite(residual):
        return -math.inf
    return 1.0 - residual / total


def _polish(f: SymbolicFunction, x: Tensor, y: Tensor, params: Affine) -> Affine:
    """Levenberg-Marquardt on all four parameters from the grid's best point (autograd Jacobian)."""

    def residual_and_jacobian(p: Tensor) -> tuple[Tensor, Tensor]:
        a, b, c, d = p.tolist()
        pre = (a * x + b).requires_grad_()
        with torch.enable_grad():
            out = f.torch_fn(pre)
            (slope,) = torch.autograd.grad(out.sum(), pre, allow_unused=True)
        out = out.detach()
        slope = torch.zeros_like(x) if slope is None else slope
        return c * out + d - y, torch.stack([c * slope * x, c * slope, out, torch.ones_like(x)], dim=1)

    a, b, c, d = levenberg_marquardt(residual_and_jacobian, torch.tensor(params, dtype=torch.float64)).tolist()
    return a, b, c, d


def fit_affine(
    x: Tensor,
    y: Tensor,
    fn: str | SymbolicFunction,
    a_range: tuple[float, float] = (-10.0, 10.0),
    b_range: tuple[float, float] = (-10.0, 10.0),
    grid_number: int = 51,
    iterations: int = 3,
) -> tuple[Affine, float]:
    """Fit ``y ≈ c·f(a·x + b) + d``; returns ``((a, b, c, d), R²)``.

    A ``grid_number²`` grid over ``(a, b)`` is searched for the best R² of the linear regression
    of ``y`` on ``f(a·x + b)``, then zoomed ``iterations`` times around the winner (to ±1 grid
    step); among grid points tied in R² (degenerate directions such as ``c·exp(b)``) the one
    nearest ``(a, b) = (1, 0)`` wins. ``(c, d)`` come from least squares, then Levenberg-Marquardt
    refines all four when R² >= 0.9 (kept only if R² improves). Non-finite values of ``f`` count as bad fits, and
    so do nearly constant ones (std below 1e-7 of max |f|), whose shape is float rounding.
    A constant ``y`` gives ``(1, 0, 0, mean)`` with R² = 1.
    """
    f = _as_function(fn)
    x = torch.as_tensor(x, dtype=torch.float64).detach().cpu().flatten()
    y = torch.as_tensor(y, dtype=torch.float64).detach().cpu().flatten()
    if x.shape != y.shape or x.numel() < 2:
        raise ValueError(f"x and y must hold the same number (>= 2) of samples, got {x.numel()} and {y.numel()}")
    if grid_number < 2 or iterations < 1:
        raise ValueError(f"need grid_number >= 2 and iterations >= 1, got {grid_number} and {iterations}")
    if float(y.std()) == 0.0:
        return (1.0, 0.0, 0.0, float(y.mean())), 1.0
    (a_low, a_high), (b_low, b_high) = a_range, b_range
    for _ in range(iterations):
        a = torch.linspace(a_low, a_high, grid_number, dtype=torch.float64)
        b = torch.linspace(b_low, b_high, grid_number, dtype=torch.float64)
        r2 = _r2_grid(f, x, y, a, b)
        tied = r2 >= r2.max() - _TIE
        distance = (a[:, None] - 1).abs() + b[None, :].abs()
        index = int(torch.where(tied, distance, math.inf).argmin())
        a_best, b_best = float(a[index // grid_number]), float(b[index % grid_number])
        a_step, b_step = (a_high - a_low) / (grid_number - 1), (b_high - b_low) / (grid_number - 1)
        a_low, a_high, b_low, b_high = a_best - a_step, a_best + a_step, b_best - b_step, b_best + b_step
    params, r2_best = _linear_fit(f, x, y, a_best, b_best)
    if params[2] != 0.0 and r2_best >= _POLISH_MIN_R2:
        polished = _polish(f, x, y, params)
        with torch.no_grad():
            r2_polished = _r2(polished[2] * f.torch_fn(polished[0] * x + polished[1]) + polished[3], y)
        if r2_polished > r2_best:
            params, r2_best = polished, r2_polished
    return params, r2_best


def _score(r2: float, complexity: int, weight_simple: float) -> float:
    """The module docstring's rank score; R² <= 0 earns no bits."""
    bits = min(-math.log2(1.0 - r2), MAX_BITS) if 0.0 < r2 < 1.0 else (MAX_BITS if r2 >= 1.0 else 0.0)
    return weight_simple * complexity - (1.0 - weight_simple) * bits


def _layer_samples(model: KAN, layer: int, x: Tensor) -> tuple[Tensor, Tensor]:
    """Layer ``layer``'s inputs ``[batch, in]`` and edge activations ``[batch, in, out]``."""
    with torch.no_grad():
        inputs = model.layer_inputs(x)[layer]
        return inputs, model.layers[layer].edge_activations(inputs)


def _edge_samples(model: KAN, edge: Edge, x: Tensor) -> tuple[Tensor, Tensor]:
    """Edge ``(l, i, j)``'s input samples and its activation ``φ`` at them, both ``[batch]``."""
    l, i, j = edge
    if not 0 <= l < len(model.layers) or not 0 <= i < model.width[l] or not 0 <= j < model.width[l + 1]:
        raise IndexError(f"edge {edge} outside a KAN of width {model.width}")
    inputs, phi = _layer_samples(model, l, x)
    return inputs[:, i], phi[:, i, j]


def _rank(inputs: Tensor, phi: Tensor, library: Iterable[str] | None, weight_simple: float) -> list[Suggestion]:
    """Every library function fitted to one edge's samples, best first."""
    names = list(LIBRARY) if library is None else list(library)
    suggestions = []
    for name in names:
        f = get_function(name)
        params, r2 = fit_affine(inputs, phi, f)
        suggestions.append(Suggestion(name, params, r2, f.complexity, _score(r2, f.complexity, weight_simple)))
    order = {name: position for position, name in enumerate(LIBRARY)}
    return sorted(suggestions, key=lambda s: (s.score, s.complexity, order[s.name]))


def suggest_symbolic(
    model: KAN,
    l: int,
    i: int,
    j: int,
    x: Tensor,
    library: Iterable[str] | None = None,
    top_k: int = 5,
    weight_simple: float = 0.8,
) -> list[Suggestion]:
    """The ``top_k`` library functions for edge ``(l, i, j)``, best first (see module docstring)."""
    inputs, phi = _edge_samples(model, (l, i, j), x)
    return _rank(inputs, phi, library, weight_simple)[:top_k]


def fix_symbolic(model: KAN, l: int, i: int, j: int, name: str, x: Tensor) -> float:
    """Snap edge ``(l, i, j)`` to ``name``, fitted to its current ``(input, φ)`` samples; returns R²."""
    f = get_function(name)
    params, r2 = fit_affine(*_edge_samples(model, (l, i, j), x), f)
    model.layers[l].set_symbolic(i, j, name, params)
    return r2


def auto_symbolic(
    model: KAN,
    x: Tensor,
    library: Iterable[str] | None = None,
    r2_threshold: float = 0.0,
    zero_threshold: float = 1e-3,
    weight_simple: float = 0.8,
) -> dict[Edge, Suggestion]:
    """Snap every live numeric edge to its best suggestion, layer by layer (each layer's samples
    are taken after the layers before it were snapped); returns what was snapped.

    An edge with ``|φ|₁ < zero_threshold`` becomes ``"0"`` (its mean kept as the constant ``d``).
    An edge whose best R² is below ``r2_threshold`` stays numeric.
    """
    library = None if library is None else list(library)
    snapped: dict[Edge, Suggestion] = {}
    for l, layer in enumerate(model.layers):
        inputs, phi = _layer_samples(model, l, x)
        numeric = (layer.mask != 0) & (layer.symbolic_mask == 0)
        for i, j in torch.nonzero(numeric).tolist():
            if float(phi[:, i, j].abs().mean()) < zero_threshold:
                zero = get_function("0")
                params, r2 = fit_affine(inputs[:, i], phi[:, i, j], zero)
                best = Suggestion(zero.name, params, r2, zero.complexity, _score(r2, zero.complexity, weight_simple))
            else:
                best = _rank(inputs[:, i], phi[:, i, j], library, weight_simple)[0]
                if best.r2 < r2_threshold:
                    continue
            layer.set_symbolic(i, j, best.name, best.params)
            snapped[(l, i, j)] = best
    return snapped


def numeric_edges(model: KAN) -> list[Edge]:
    """Live edges (mask ≠ 0) that are not yet symbolic, as ``(layer, in, out)``."""
    return [
        (l, i, j)
        for l, layer in enumerate(model.layers)
        for i, j in torch.nonzero((layer.mask != 0) & (layer.symbolic_mask == 0)).tolist()
    ]


def symbolic_formula(
    model: KAN, variables: Sequence[sympy.Symbol | str] | None = None, digits: int | None = None
) -> list[sympy.Expr]:
    """One sympy expression per output: every live edge contributes ``c·f(a·x + b) + d``, nodes sum.

    ``variables`` name the inputs (default ``x_1 … x_n``); ``digits`` rounds every float to that
    many decimal places. Raises ``ValueError`` naming the edges that are still numeric.
    """
    remaining = numeric_edges(model)
    if remaining:
        raise ValueError(f"cannot export a formula: live edges (layer, in, out) still numeric: {remaining}")
    if variables is None:
        variables = sympy.symbols(f"x_1:{model.width[0] + 1}")
    nodes = [sympy.Symbol(v) if isinstance(v, str) else v for v in variables]
    if len(nodes) != model.width[0]:
        raise ValueError(f"expected {model.width[0]} variables, got {len(nodes)}")
    for layer in model.layers:
        outputs: list[sympy.Expr] = [sympy.Integer(0)] * layer.out_dim
        for (i, j), name in sorted(layer.symbolic_names.items()):
            mask = float(layer.mask[i, j])
            if mask == 0.0:
                continue
            a, b, c, d = (sympy.Float(v) for v in layer.symbolic_affine[i, j].tolist())
            term = c * get_function(name).sympy_fn(a * nodes[i] + b) + d
            outputs[j] += term if mask == 1.0 else sympy.Float(mask) * term
        nodes = outputs
    if digits is not None:
        nodes = [round_floats(expr, digits) for expr in nodes]
    return nodes


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
