"""B-spline bases on per-input knot grids, grid construction and least-squares fits.

Shapes: ``x`` is ``[batch, in]``; a grid is ``[in, G + 2k + 1]`` knots (G intervals on the
grid range, extended by k knots on each side); a basis is ``[batch, in, G + k]``.
"""

from __future__ import annotations

import functools
import numbers
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import Tensor


def is_whole(value: float) -> bool:
    """True for an integer, or a real number without fractional part (sizes may come from configs
    as 5.0); False for anything else, text included."""
    return isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and float(value).is_integer())


MAX_GRID = 10_000  # the largest G (intervals per edge): a refit's dense least squares grows as G²


def check_grid_size(num_intervals: int, order: int) -> None:
    """Raise a clear error for a non-integer, empty, oversized or negative grid / order."""
    for name, value in (("num_intervals", num_intervals), ("order", order)):
        if not is_whole(value):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if int(num_intervals) < 1:
        raise ValueError(f"grid must have at least 1 interval, got num_intervals={num_intervals}")
    if int(num_intervals) > MAX_GRID:
        raise ValueError(f"grid must have at most {MAX_GRID} intervals (a refit's memory grows as G²), "
                         f"got num_intervals={num_intervals}")
    if int(order) < 0:
        raise ValueError(f"spline order must be >= 0, got order={order}")


def uniform_grid(low: Tensor, high: Tensor, num_intervals: int, order: int) -> Tensor:
    """Uniform knots ``[in, G + 2k + 1]`` on ``[low_i, high_i]`` with k extra knots per side."""
    check_grid_size(num_intervals, order)
    if bool((high <= low).any()):
        raise ValueError("grid range must satisfy low < high for every input")
    step = (high - low) / num_intervals
    offsets = torch.arange(-order, num_intervals + order + 1, dtype=low.dtype, device=low.device)
    return low[:, None] + offsets[None, :] * step[:, None]


def adaptive_grid(x: Tensor, num_intervals: int, order: int, uniform_fraction: float) -> Tensor:
    """Knots that follow the samples: ``e·uniform + (1-e)·percentile`` on [min, max] of ``x``.

    ``uniform_fraction = 1`` gives a uniform grid on the sample range (the fast path).
    """
    check_grid_size(num_intervals, order)
    if not 0.0 <= uniform_fraction <= 1.0:
        raise ValueError(f"uniform_fraction must be in [0, 1], got {uniform_fraction}")
    sorted_x = torch.sort(x, dim=0).values  # [batch, in]
    low, high = sorted_x[0], sorted_x[-1]
    span = high - low
    high = torch.where(span > 0, high, low + 1e-2)  # a constant input still gets a valid grid
    low = torch.where(span > 0, low, low - 1e-2)
    uniform = uniform_grid(low, high, num_intervals, order)
    if uniform_fraction == 1.0:
        return uniform
    positions = torch.linspace(0, x.shape[0] - 1, num_intervals + 1, device=x.device).round().long()
    percentile = sorted_x[positions].T  # [in, G + 1]
    inner = uniform_fraction * uniform[:, order : order + num_intervals + 1]
    inner = inner + (1 - uniform_fraction) * percentile
    collapsed = int((inner.diff(dim=1) <= 0).any(dim=1).sum())
    if collapsed:  # repeated sample values at two percentiles: a zero-width interval makes the basis NaN
        raise ValueError(f"uniform_fraction = {uniform_fraction} puts two knots on the same value for {collapsed} "
                         f"input(s) (repeated sample values); use a fraction > 0, e.g. the paper's 0.02")
    step = (inner[:, -1:] - inner[:, :1]) / num_intervals
    ks = torch.arange(1, order + 1, dtype=x.dtype, device=x.device)
    left = inner[:, :1] - step * ks.flip(0)[None, :]
    right = inner[:, -1:] + step * ks[None, :]
    return torch.cat([left, inner, right], dim=1)


def bspline_basis(x: Tensor, grid: Tensor, order: int) -> Tensor:
    """Cox-de Boor basis ``[batch, in, G + k]`` for arbitrary (non-decreasing) knots."""
    x = x.unsqueeze(-1)
    basis = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
    for p in range(1, order + 1):
        left_den = grid[:, p:-1] - grid[:, : -(p + 1)]
        right_den = grid[:, p + 1 :] - grid[:, 1:-p]
        left = (x - grid[:, : -(p + 1)]) / left_den * basis[..., :-1]
        right = (grid[:, p + 1 :] - x) / right_den * basis[..., 1:]
        basis = left + right
    return basis


@functools.lru_cache(maxsize=None)
def local_polynomials(order: int) -> tuple[tuple[Fraction, ...], ...]:
    """Exact coefficients ``M[p][r]`` with ``value_r(f) = Σ_p M[p][r] f^p`` for f ∈ [0, 1).

    value_r is the cardinal B-spline whose support starts r - k intervals before the current
    one; built with the uniform-knot Cox-de Boor recurrence on polynomial coefficients.
    """

    def add(a: list[Fraction], b: list[Fraction]) -> list[Fraction]:
        return [x + y for x, y in zip(a + [Fraction(0)] * (len(b) - len(a)), b + [Fraction(0)] * (len(a) - len(b)))]

    def times_linear(poly: list[Fraction], const: Fraction, slope: Fraction) -> list[Fraction]:
        shifted = [Fraction(0)] + [slope * c for c in poly]
        return add([const * c for c in poly], shifted)

    values = [[Fraction(1)]]
    for p in range(1, order + 1):
        nxt = []
        for r in range(p + 1):
            term: list[Fraction] = [Fraction(0)]
            if r >= 1:  # (f + p - r) · value_{r-1}
                term = add(term, times_linear(values[r - 1], Fraction(p - r), Fraction(1)))
            if r < p:  # (1 - f + r) · value_r
                term = add(term, times_linear(values[r], Fraction(1 + r), Fraction(-1)))
            nxt.append([c / p for c in term])
        values = nxt
    padded = [v + [Fraction(0)] * (order + 1 - len(v)) for v in values]
    return tuple(tuple(padded[r][q] for r in range(order + 1)) for q in range(order + 1))


@functools.lru_cache(maxsize=None)
def _local_matrix(order: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.tensor(local_polynomials(order), dtype=dtype).to(device)  # [k+1 powers, k+1]


@functools.lru_cache(maxsize=None)
def local_value_slope_matrix(order: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``[2(k+1), k+1]``: rows r give value_r, rows k+1+r its derivative, as coefficients of 1, f, f², ..."""
    exact = local_polynomials(order)
    slopes = [[(p + 1) * exact[p + 1][r] for p in range(order)] + [Fraction(0)] for r in range(order + 1)]
    values = [[exact[p][r] for p in range(order + 1)] for r in range(order + 1)]
    return torch.tensor(values + slopes, dtype=dtype).to(device)


def local_uniform_values(frac: Tensor, order: int) -> Tensor:
    """Values ``[..., k + 1]`` of the k+1 cardinal B-splines that are non-zero at ``frac`` ∈ [0, 1)."""
    if order == 0:  # one piecewise-constant B-spline, 1 on its interval (vander needs N >= 2)
        return torch.ones_like(frac).unsqueeze(-1)
    powers = torch.linalg.vander(frac, N=order + 1)  # [..., k+1] = 1, f, f², ...
    return powers @ _local_matrix(order, frac.dtype, frac.device)


def uniform_spacing(grid: Tensor) -> tuple[Tensor, Tensor]:
    """First knot and knot spacing ``[..., 1]`` of uniform grids ``[..., knots]``."""
    start = grid[..., :1]
    return start, (grid[..., -1:] - start) / (grid.shape[-1] - 1)  # accurate even for large G in float32


def grid_samples(grid: Tensor, order: int) -> Tensor:
    """Evenly spaced points over each row's grid range, ``[3(G + k) + 1, rows]`` (the points a grid
    update refits on besides the data)."""
    count = 3 * (grid.shape[1] - order - 1) + 1
    t = torch.linspace(0, 1, count, dtype=grid.dtype, device=grid.device)[:, None]
    low, high = grid[:, order], grid[:, -order - 1]
    return low + t * (high - low)


def uniform_bspline_basis_padded(x: Tensor, grid: Tensor, order: int) -> Tensor:
    """Fast basis for per-input uniform grids, padded to ``[batch, in, G + 3k]``.

    Column ``c`` holds basis function ``c - k``; the k columns on each side belong to
    functions that do not exist and multiply zero-padded coefficients. Only k+1 values
    per input are computed (closed form), then scattered into place.
    """
    num_basis = grid.shape[1] - order - 1  # G + k
    start, step = (t[:, 0] for t in uniform_spacing(grid))
    u = (x - start) / step  # position in knot intervals, [batch, in]
    cell = torch.floor(u)
    inside = (u >= 0) & (u < num_basis + order)
    cell = torch.where(inside, cell, torch.zeros_like(cell))
    values = local_uniform_values(u - cell, order) * inside.unsqueeze(-1).to(x.dtype)
    offsets = torch.arange(order + 1, device=x.device)
    index = cell.long().unsqueeze(-1) + offsets  # padded column = (cell - k + r) + k
    padded = x.new_zeros(*x.shape, num_basis + 2 * order)
    return padded.scatter(-1, index, values)


# The padded column layout of the stacked reference (kan.batched_layers; the C header
# kan/csrc/uniform_kan_body.h has its own): per input, G + k + 2(k + 1) columns, function j in
# column j + k + 1 (pad_functions) and k + 1 always-zero columns on each side. A sample in knot
# cell c (padded_cell) has value r in column c + local_column_offsets()[r] = c + 1 + r.


def pad_functions(values: Tensor, order: int) -> Tensor:
    """``values [..., G + k]`` (one per function) in their padded columns, zeros around."""
    return F.pad(values, (order + 1, order + 1))


def padded_cell(floor: Tensor, num_basis: int, order: int) -> Tensor:
    """The knot cell ``floor(u)`` as int64, clamped to ``[-1, num_basis + k]`` so that samples off
    the grid (NaN and ±inf convert to some integer, clamped too) only reach padding columns."""
    return floor.long().clamp_(-1, num_basis + order)


def local_column_offsets(order: int, device: torch.device | None = None) -> Tensor:
    """``[k + 1]`` int64: value r of a sample in knot cell c sits in padded column ``c + 1 + r``."""
    return torch.arange(1, order + 2, device=device)


def local_columns(cell: Tensor, order: int) -> Tensor:
    """Padded columns ``[..., k + 1, in, batch]`` of the local values of cells ``[..., in, batch]``."""
    return cell.unsqueeze(-3) + local_column_offsets(order, cell.device)[:, None, None]


def local_basis(u: Tensor, order: int, derivative: bool = False) -> tuple[Tensor, Tensor | None, Tensor]:
    """The k+1 cardinal B-splines that can be non-zero at positions ``u [..., in, batch]`` (in knot
    intervals, contiguous): values ``[..., k+1, in, batch]`` (value r belongs to function
    ``floor(u) - k + r``), their derivatives d/du (or None) and ``floor(u)``. Inputs last keep every
    elementwise op and the polynomial product long and contiguous."""
    lead = u.shape[:-2]
    floor = torch.floor(u)
    frac = (u - floor).view(*lead, 1, -1)
    powers = [torch.ones_like(frac), frac]
    while len(powers) <= order:
        powers.append(powers[-1] * frac)
    rows = order + 1
    matrix = local_value_slope_matrix(order, u.dtype, u.device)
    block = (matrix if derivative else matrix[:rows]) @ torch.cat(powers[:rows], dim=-2)
    block = block.view(*lead, -1, *u.shape[-2:])
    if not derivative:
        return block, None, floor
    return block.narrow(-3, 0, rows), block.narrow(-3, rows, rows), floor


def spline_values(x: Tensor, grid: Tensor, coef: Tensor, order: int, uniform: bool) -> Tensor:
    """The bare splines ``Σ c B(x)`` per edge, ``[batch, in, out]``, for coefficients ``[in, out, G + k]``
    on ``grid`` (``uniform``: through the padded uniform basis, else Cox-de Boor)."""
    if uniform:
        return torch.einsum("bin,ion->bio", uniform_bspline_basis_padded(x, grid, order), F.pad(coef, (order, order)))
    return torch.einsum("bin,ion->bio", bspline_basis(x, grid, order), coef)


REFIT_BASIS_BUDGET = 1 << 27  # basis values one refit holds at once (1 GiB in float64)


def refit(samples: Tensor, grid: Tensor, coef: Tensor, new_grid: Tensor, order: int, uniform: bool,
          budget: int = REFIT_BASIS_BUDGET) -> Tensor:
    """Coefficients on ``new_grid`` whose splines match those of ``coef`` on ``grid`` at ``samples``
    (least squares). Each input's fit is its own, so inputs are fitted in groups whose dense basis
    (samples × inputs × basis functions) stays within ``budget`` values: a [100,1,1] KAN refitted
    onto G = 1000 at 13003 samples would otherwise hold 10 GB at once."""
    per_input = samples.shape[0] * (new_grid.shape[1] + grid.shape[1])
    step = max(1, budget // max(per_input, 1))
    parts = [fit_coefficients(samples[:, i:i + step], spline_values(samples[:, i:i + step], grid[i:i + step],
                                                                     coef[i:i + step], order, uniform),
                              new_grid[i:i + step], order)
             for i in range(0, samples.shape[1], step)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def follow_samples(x: Tensor, grid: Tensor, coef: Tensor, num_intervals: int, order: int, uniform_fraction: float,
                   uniform: bool) -> tuple[Tensor, Tensor]:
    """A grid of ``num_intervals`` that follows the samples ``x [batch, in]`` (:func:`adaptive_grid`)
    and the coefficients that keep each spline the same function on it, fitted at the samples and
    the new grid's own points."""
    new_grid = adaptive_grid(x, num_intervals, order, uniform_fraction)
    samples = torch.cat([x, grid_samples(new_grid, order)])
    return new_grid, refit(samples, grid, coef, new_grid, order, uniform)


def fit_coefficients(x: Tensor, y: Tensor, grid: Tensor, order: int, ridge: float | None = None) -> Tensor:
    """Least-squares spline coefficients ``[in, out, G + k]`` with ``spline_i(x[:, i]) ≈ y[:, i, :]``.

    ``x`` is ``[batch, in]``, ``y`` is ``[batch, in, out]``. A tiny ridge (relative to the
    Gram matrix scale) keeps basis functions without samples at zero.
    """
    basis = bspline_basis(x, grid, order).transpose(0, 1)  # [in, batch, nb]
    gram = basis.transpose(1, 2) @ basis  # [in, nb, nb]
    rhs = basis.transpose(1, 2) @ y.transpose(0, 1)  # [in, nb, out]
    if ridge is None:
        ridge = 1e-12 if x.dtype == torch.float64 else 1e-6
    scale = gram.diagonal(dim1=1, dim2=2).mean(dim=1).clamp_min(1e-30)
    eye = torch.eye(gram.shape[-1], dtype=x.dtype, device=x.device)
    coef = torch.linalg.solve(gram + ridge * scale[:, None, None] * eye, rhs)  # [in, nb, out]
    return coef.transpose(1, 2).contiguous()
