"""Snapping a one-input chain as one composition: ``x → φ₁ → φ₂`` becomes
``c·f(α·g(a·x + b) + β) + d``.

A hidden node with a single live incoming and a single live outgoing edge passes one function of
one input on; what the two edges learned separately is not determined (any invertible ``h`` can sit
between them: ``φ₂∘φ₁ = (φ₂∘h⁻¹)∘(h∘φ₁)``), so fitting the edges one by one rarely finds ``f`` and
``g`` even when the chain computes ``f(g(x))`` exactly. Only the chain's composite is determined,
and it is fitted as a whole:

1. every inner ``g`` of the library is placed twice: fitted to the composite itself
   (:func:`kan.symbolic_fit.fit_affine`; a monotone outer ``f`` keeps ``g``'s extrema and level
   sets in place), and where the composite is best a quartic polynomial of ``g(a·x + b)`` (a
   stand-in for an outer ``f`` with extrema, as ``sin`` in ``sin(2x²)``);
2. for the ``inner_candidates`` best placed by each route, every outer ``f`` is fitted to
   ``(g(a·x + b), composite)``;
3. the ``polished`` best pairs by rank score (:func:`kan.symbolic_fit.rank_score`, the pair's
   complexity being the sum of both) are refined on all six parameters by Levenberg-Marquardt,
   and the best pair after that wins.

It costs about 100 affine fits per chain. Known limit: the rank score caps a fit's
accuracy at 16 bits, so a simpler pair that fits the composite to 1 − R² ≈ 1e-5 (a cosine arc
for √(1 + x²)) ties with the exact composition and wins on complexity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from kan.levenberg import levenberg_marquardt
from kan.symbolic_fit import Affine, fit_affine, r2_score, rank_score
from kan.symbolic_library import SymbolicFunction, get_function

_DEGREE = 4  # of the polynomial standing in for an unknown smooth outer function
_GRID = 41
_RESOLUTION = 1e-7  # an inner placement whose values vary less than this, relative to their size, is rejected


@dataclass(frozen=True)
class Composition:
    """A composition ``c·f(α·g(a·x + b) + β) + d``: the inner edge becomes ``g`` with ``(a, b, 1, 0)``,
    the outer edge ``f`` with ``(α, β, c, d)``; R² of the composite and the summed complexity."""

    inner: str
    inner_params: Affine
    outer: str
    outer_params: Affine
    r2: float
    complexity: int


def _composite(g: SymbolicFunction, f: SymbolicFunction, x: Tensor, p: Tensor) -> Tensor:
    a, b, alpha, beta, c, d = p.unbind()
    return c * f.torch_fn(alpha * g.torch_fn(a * x + b) + beta) + d


def _polished(pair: Composition, x: Tensor, y: Tensor) -> Composition:
    """``pair`` after Levenberg-Marquardt on its six parameters (autograd Jacobian); kept only if R² improves."""
    g, f = get_function(pair.inner), get_function(pair.outer)

    def residual_and_jacobian(p: Tensor) -> tuple[Tensor, Tensor]:
        jacobian = torch.autograd.functional.jacobian(lambda q: _composite(g, f, x, q), p)
        return _composite(g, f, x, p) - y, jacobian

    start = torch.tensor([*pair.inner_params[:2], *pair.outer_params], dtype=torch.float64)
    p = levenberg_marquardt(residual_and_jacobian, start)
    with torch.no_grad():
        r2 = r2_score(_composite(g, f, x, p), y)
    if not r2 > pair.r2:
        return pair
    a, b, alpha, beta, c, d = p.tolist()
    return Composition(pair.inner, (a, b, 1.0, 0.0), pair.outer, (alpha, beta, c, d), r2, pair.complexity)


def _polynomial_r2(u: Tensor, y0: Tensor) -> Tensor:
    """R² of the least-squares quartic in ``u`` for centred ``y0``, one per row of ``u`` ``[rows, n]``;
    -inf where a row is not finite or nearly constant."""
    low, high = u.amin(dim=-1, keepdim=True), u.amax(dim=-1, keepdim=True)
    resolved = ((high - low) > _RESOLUTION * u.abs().amax(dim=-1, keepdim=True)).squeeze(-1) & torch.isfinite(u).all(-1)
    t = torch.nan_to_num(torch.where(resolved[:, None], (2 * u - low - high) / (high - low), torch.zeros_like(u)))
    basis = torch.stack([t**p for p in range(1, _DEGREE + 1)], dim=-1)  # [rows, n, degree]
    basis = basis - basis.mean(dim=1, keepdim=True)
    fitted = basis @ torch.linalg.lstsq(basis, y0.expand(len(u), -1)[..., None]).solution
    r2 = 1 - ((y0 - fitted.squeeze(-1)) ** 2).sum(dim=-1) / (y0 @ y0)
    return torch.where(resolved & torch.isfinite(r2), r2, -math.inf)


def _smooth_placement(x: Tensor, y: Tensor, name: str) -> tuple[float, float, float]:
    """``(a, b, R²)`` where ``y`` is best a quartic polynomial of ``g(a·x + b)``: a grid over
    a, b ∈ [-10, 10], zoomed twice around the winner."""
    g, y0 = get_function(name).torch_fn, y - y.mean()
    (a_low, a_high), (b_low, b_high) = (-10.0, 10.0), (-10.0, 10.0)
    for _ in range(3):
        a = torch.linspace(a_low, a_high, _GRID, dtype=torch.float64)
        b = torch.linspace(b_low, b_high, _GRID, dtype=torch.float64)
        r2 = _polynomial_r2(g((a[:, None, None] * x + b[None, :, None]).reshape(_GRID * _GRID, -1)), y0)
        best = int(r2.argmax())
        a_best, b_best, r2_best = float(a[best // _GRID]), float(b[best % _GRID]), float(r2[best])
        a_step, b_step = (a_high - a_low) / (_GRID - 1), (b_high - b_low) / (_GRID - 1)
        a_low, a_high, b_low, b_high = a_best - a_step, a_best + a_step, b_best - b_step, b_best + b_step
    return a_best, b_best, r2_best


def _placements(x: Tensor, y: Tensor, library: Sequence[str], count: int) -> list[tuple[str, float, float]]:
    """Inner candidates ``(g, a, b)``: the ``count`` best by a direct fit of ``g`` to the composite
    (right for a monotone outer function) and the ``count`` best by a smooth outer function
    (a quartic, for outer functions with extrema), without repeats."""
    direct = sorted(((fit_affine(x, y, g), g) for g in library), key=lambda item: -item[0][1])
    smooth = sorted(((_smooth_placement(x, y, g), g) for g in library), key=lambda item: -item[0][2])
    found = [(g, a, b) for ((a, b, _, _), _), g in direct[:count]] + [(g, a, b) for (a, b, _), g in smooth[:count]]
    return list(dict.fromkeys(found))


def fit_composition(x: Tensor, y: Tensor, library: Sequence[str], weight_simple: float = 0.8,
                    inner_candidates: int = 3, polished: int = 3) -> Composition:
    """The best composition ``c·f(α·g(a·x + b) + β) + d`` of two library functions for samples
    ``y ≈ F(x)`` (see the module docstring); ties go to the earlier inner and outer function."""
    if not library:
        raise ValueError("fit_composition needs a non-empty library")
    x = torch.as_tensor(x, dtype=torch.float64).detach().flatten()
    y = torch.as_tensor(y, dtype=torch.float64).detach().flatten()
    pairs = []
    for g, a, b in _placements(x, y, library, inner_candidates):
        u = get_function(g).torch_fn(a * x + b)
        for f in library:
            outer, r2 = fit_affine(u, y, f)
            pairs.append(Composition(g, (a, b, 1.0, 0.0), f, outer, r2,
                                     get_function(g).complexity + get_function(f).complexity))

    def score(pair: Composition) -> float:
        return rank_score(pair.r2, pair.complexity, weight_simple)

    best = sorted(pairs, key=score)[:polished]
    return min((_polished(pair, x, y) for pair in best), key=score)
