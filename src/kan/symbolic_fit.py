"""Fitting ``c·f(a·x + b) + d`` to samples of one function, and the rank score of a fit.

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

import torch
from torch import Tensor

from kan.levenberg import levenberg_marquardt
from kan.symbolic_library import SymbolicFunction, get_function

MAX_BITS = 16.0
_TIE = 1e-12  # R² this close to the grid's best counts as a tie (degenerate affine directions)
_CHUNK = 250_000  # grid points x samples evaluated at once (cache-sized)
_RESOLUTION = 1e-7  # grid fits whose values vary less than this, relative to their size, are rejected
_POLISH_MIN_R2 = 0.9  # refining a poorer fit cannot change its rank

Affine = tuple[float, float, float, float]


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
        if f.domain is not None:  # a fit that needs the clamp outside f's domain is not f
            resolved &= f.domain(pre).all(dim=-1)
        out.append(torch.where(resolved, torch.nan_to_num(r2, nan=-math.inf, posinf=-math.inf), -math.inf))
    return torch.cat(out)


def _linear_fit(f: SymbolicFunction, x: Tensor, y: Tensor, a: float, b: float) -> tuple[Affine, float]:
    """Least-squares ``(c, d)`` for fixed ``(a, b)`` and the resulting R² (-inf when not finite or
    when a sample leaves ``f``'s domain)."""
    values = f.torch_fn(a * x + b)
    v0 = values - values.mean()
    var = float(v0 @ v0)
    c = float(v0 @ (y - y.mean())) / var if var > 0 else 0.0
    d = float(y.mean() - c * values.mean())
    return (a, b, c, d), r2_score(values * c + d, y) if in_domain(f, a * x + b) else -math.inf


def in_domain(f: SymbolicFunction, arguments: Tensor) -> bool:
    """Whether every argument lies where ``f``'s torch function computes its formula (no clamp)."""
    return f.domain is None or bool(f.domain(arguments).all())


def r2_score(prediction: Tensor, y: Tensor) -> float:
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
    so do nearly constant ones (std below 1e-7 of max |f|), whose shape is float rounding, and fits
    that put a sample outside ``f``'s domain (``SymbolicFunction.domain``: the exported formula
    would not be what the model computes there).
    A constant ``y`` gives ``(1, 0, 0, mean)`` with R² = 1.
    """
    f = _as_function(fn)
    x = torch.as_tensor(x, dtype=torch.float64).detach().cpu().flatten()
    y = torch.as_tensor(y, dtype=torch.float64).detach().cpu().flatten()
    if x.shape != y.shape or x.numel() < 2:
        raise ValueError(f"x and y must hold the same number (>= 2) of samples, got {x.numel()} and {y.numel()}")
    if not bool(torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("x and y must be finite: drop or repair the NaN or inf samples before fitting")
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
            r2_polished = r2_score(polished[2] * f.torch_fn(polished[0] * x + polished[1]) + polished[3], y)
        if r2_polished > r2_best and in_domain(f, polished[0] * x + polished[1]):
            params, r2_best = polished, r2_polished
    return params, r2_best


def rank_score(r2: float, complexity: int, weight_simple: float = 0.8) -> float:
    """The module docstring's rank score (lower is better); R² <= 0 earns no bits."""
    bits = min(-math.log2(1.0 - r2), MAX_BITS) if 0.0 < r2 < 1.0 else (MAX_BITS if r2 >= 1.0 else 0.0)
    return weight_simple * complexity - (1.0 - weight_simple) * bits
