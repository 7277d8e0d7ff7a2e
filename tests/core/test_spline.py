"""B-spline basis identities and least-squares grid extension."""

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from kan import spline

F64 = torch.float64


def _grid(G: int, k: int = 3) -> torch.Tensor:
    low = torch.tensor([-1.0, -2.5, 0.0], dtype=F64)
    high = torch.tensor([1.0, 0.5, 3.0], dtype=F64)
    return spline.uniform_grid(low, high, G, k)


def _inside(grid: torch.Tensor, k: int, n: int = 2000) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    low, high = grid[:, k], grid[:, -k - 1]
    return low + torch.rand(n, grid.shape[0], generator=gen, dtype=F64) * (high - low)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("G", [1, 4, 17])
def test_partition_of_unity_inside_grid(G, k):
    grid = _grid(G, k)
    basis = spline.bspline_basis(_inside(grid, k), grid, k)
    assert basis.shape[-1] == G + k
    assert torch.allclose(basis.sum(-1), torch.ones((), dtype=F64), atol=1e-12)
    assert bool((basis >= 0).all())


@pytest.mark.parametrize("k", [1, 3, 4])
def test_matches_scipy_bspline(k):
    grid = _grid(9, k)
    x = _inside(grid, k, 500)
    rng = np.random.default_rng(1)
    basis = spline.bspline_basis(x, grid, k)
    for i in range(grid.shape[0]):
        coef = rng.normal(size=grid.shape[1] - k - 1)
        ours = basis[:, i, :].numpy() @ coef
        ref = BSpline(grid[i].numpy(), coef, k)(x[:, i].numpy())
        assert np.abs(ours - ref).max() <= 1e-10


@pytest.mark.parametrize("k", [1, 2, 3])
def test_fast_uniform_path_equals_cox_de_boor_everywhere(k):
    grid = _grid(6, k)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(3000, 3, generator=gen, dtype=F64) * 10 - 5  # inside and far outside the grid
    fast = spline.uniform_bspline_basis_padded(x, grid, k)[..., k:-k]
    assert torch.allclose(fast, spline.bspline_basis(x, grid, k), atol=1e-12)


def test_fast_path_gradient_matches_cox_de_boor():
    grid = _grid(5)
    x = _inside(grid, 3, 200).requires_grad_(True)
    weights = torch.randn(200, 3, 8, dtype=F64, generator=torch.Generator().manual_seed(3))
    (g_fast,) = torch.autograd.grad((spline.uniform_bspline_basis_padded(x, grid, 3)[..., 3:-3] * weights).sum(), x)
    (g_ref,) = torch.autograd.grad((spline.bspline_basis(x, grid, 3) * weights).sum(), x)
    assert torch.allclose(g_fast, g_ref, atol=1e-10)


def _spline_on(grid, coef, x, k=3):
    return torch.einsum("bin,ion->bio", spline.bspline_basis(x, grid, k), coef)


def test_grid_extension_nested_is_exact():
    k, G = 3, 5
    coarse = _grid(G, k)
    coef = torch.randn(3, 2, G + k, dtype=F64, generator=torch.Generator().manual_seed(4))
    fine = _grid(2 * G, k)
    samples = _inside(fine, k, 400)
    fine_coef = spline.fit_coefficients(samples, _spline_on(coarse, coef, samples), fine, k)
    x = _inside(coarse, k, 3000)
    assert (_spline_on(fine, fine_coef, x) - _spline_on(coarse, coef, x)).abs().max() <= 1e-8


def test_grid_extension_non_nested_is_close():
    k, G = 3, 10
    coarse = _grid(G, k)
    coef = torch.randn(3, 1, G + k, dtype=F64, generator=torch.Generator().manual_seed(5)) * 0.1
    fine = _grid(27, k)
    samples = _inside(fine, k, 1000)
    fine_coef = spline.fit_coefficients(samples, _spline_on(coarse, coef, samples), fine, k)
    x = _inside(coarse, k, 3000)
    # stated tolerance: 1% of the function's range for a 10 -> 27 non-nested refit
    err = (_spline_on(fine, fine_coef, x) - _spline_on(coarse, coef, x)).abs().max()
    assert err <= 1e-2 * _spline_on(coarse, coef, x).abs().max()


def test_adaptive_grid_follows_samples():
    x = torch.randn(500, 2, dtype=F64, generator=torch.Generator().manual_seed(6)) * 3
    grid = spline.adaptive_grid(x, 8, 3, uniform_fraction=1.0)
    assert torch.allclose(grid[:, 3], x.min(0).values) and torch.allclose(grid[:, -4], x.max(0).values)
    mixed = spline.adaptive_grid(x, 8, 3, uniform_fraction=0.0)
    assert bool((mixed[:, 1:] >= mixed[:, :-1]).all())
    basis = spline.bspline_basis(x, mixed, 3)
    inner = (x > mixed[:, 3]) & (x < mixed[:, -4])
    assert torch.allclose(basis.sum(-1)[inner], torch.ones((), dtype=F64), atol=1e-12)


def test_a_fully_adaptive_grid_on_repeated_samples_is_refused_not_nan():
    """With uniform_fraction = 0 two percentiles of repeated values are one knot: a zero-width
    interval, whose basis is NaN."""
    x = torch.cat([torch.zeros(300, 1, dtype=F64), torch.linspace(0.1, 1, 200, dtype=F64)[:, None]])
    with pytest.raises(ValueError, match="puts two knots on the same value for 1 input"):
        spline.adaptive_grid(x, 8, 3, uniform_fraction=0.0)
    assert bool(spline.bspline_basis(x, spline.adaptive_grid(x, 8, 3, uniform_fraction=0.02), 3).isfinite().all())


@pytest.mark.parametrize("G", [0, -3])
def test_empty_grid_is_rejected(G):
    with pytest.raises(ValueError, match="at least 1 interval"):
        _grid(G)


def test_reversed_range_is_rejected():
    with pytest.raises(ValueError, match="low < high"):
        spline.uniform_grid(torch.ones(2), torch.zeros(2), 5, 3)


@pytest.mark.parametrize("uniform", [True, False])
def test_a_refit_over_input_groups_equals_the_whole_refit(uniform):
    """Inputs are fitted in groups when their dense basis would exceed the budget (memory), with
    the numbers of one fit over all inputs: bit for bit on the Intel Xeon (AVX-512) and the AMD
    EPYC (AVX2); on the AMD EPYC with AVX-512 the batched spline product rounds differently with
    the number of inputs it holds (7e-14 here), so the bound is rounding, not zero."""
    generator = torch.Generator().manual_seed(0)
    grid = spline.uniform_grid(torch.full((5,), -1.0, dtype=F64), torch.full((5,), 1.0, dtype=F64), 4, 3)
    if not uniform:
        grid = spline.adaptive_grid(torch.rand(50, 5, dtype=F64, generator=generator) ** 3, 4, 3, 0.5)
    coef = torch.randn(5, 2, 7, dtype=F64, generator=generator)
    samples = torch.rand(40, 5, dtype=F64, generator=generator) * 2 - 1
    new_grid = spline.uniform_grid(samples.min(0).values, samples.max(0).values, 9, 3)
    whole = spline.refit(samples, grid, coef, new_grid, 3, uniform)
    for budget in (1, 40 * 24 * 2):  # one input at a time; two at a time
        grouped = spline.refit(samples, grid, coef, new_grid, 3, uniform, budget=budget)
        assert grouped.shape == whole.shape and (grouped - whole).abs().max() <= 1e-12 * whole.abs().max()
