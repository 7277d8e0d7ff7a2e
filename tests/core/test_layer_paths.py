"""The compiled kernel's layer path against the plain differentiable ops (the reference): outputs,
gradients, masks, symbolic edges, grid updates, non-finite inputs and second derivatives."""

import math

import pytest
import torch

from kan import KAN, layers, native, spline
from kan.layers import KANLayer
from kan.science.pde import sample_collocation

F64 = torch.float64

pytestmark = pytest.mark.skipif(not native.available(), reason="compiled kernel unavailable (no C++ compiler)")


def _layer(in_dim=3, out_dim=4, G=5, activation="silu", seed=0):
    gen = torch.Generator().manual_seed(seed)
    layer = KANLayer(in_dim, out_dim, G, 3, (-1.0, 1.0), 0.5, activation, gen, F64)
    with torch.no_grad():
        layer.scale_spline.uniform_(0.5, 1.5, generator=gen)
    return layer


def _inputs(n=200, d=3, seed=1, spread=1.5):
    """Samples inside and (with ``spread`` > 1) outside the grid range, plus grid knots exactly."""
    x = (torch.rand(n, d, dtype=F64, generator=torch.Generator().manual_seed(seed)) * 2 - 1) * spread
    x[:3] = torch.tensor([-1.0, 0.2, 1.0], dtype=F64)[:, None]
    return x


def _grads(layer, x, fast):
    x = x.clone().requires_grad_(True)
    weights = torch.randn(x.shape[0], layer.out_dim, dtype=F64, generator=torch.Generator().manual_seed(7))
    with layers.use_fast_path(fast):
        out = layer(x)
        grads = torch.autograd.grad((out * weights).sum(), [x, layer.coef, layer.scale_base, layer.scale_spline])
    return out.detach(), grads


@pytest.mark.parametrize("G", [5, 40])
@pytest.mark.parametrize("out_dim", [1, 4, 8])  # the kernel's narrow layers, and a wide one (8 outputs)
@pytest.mark.parametrize("activation", ["silu", "identity", "zero"])
def test_fused_and_plain_paths_agree(G, out_dim, activation):
    layer, x = _layer(out_dim=out_dim, G=G, activation=activation), _inputs()
    assert layer.fusable
    out_fast, grads_fast = _grads(layer, x, True)
    out_plain, grads_plain = _grads(layer, x, False)
    assert torch.allclose(out_fast, out_plain, atol=1e-12)
    for fast, plain in zip(grads_fast, grads_plain):
        assert torch.allclose(fast, plain, atol=1e-10)


@pytest.mark.parametrize("G", [5, 40])
@pytest.mark.parametrize("uniform_fraction", [1.0, 0.02])
def test_masked_and_symbolic_edges_agree(G, uniform_fraction):
    layer, x = _layer(G=G), _inputs()
    layer.update_grid(x * 0.8, uniform_fraction=uniform_fraction)
    layer.mask[0, 1] = 0.0
    layer.set_symbolic(2, 3, "sin", (1.5, 0.2, 0.7, -0.1))
    out_fast, grads_fast = _grads(layer, x, True)
    out_plain, grads_plain = _grads(layer, x, False)
    assert torch.allclose(out_fast, out_plain, atol=1e-12)
    for fast, plain in zip(grads_fast, grads_plain):
        assert torch.allclose(fast, plain, atol=1e-10)
    assert grads_fast[1][0, 1].abs().max() == 0 and grads_fast[1][2, 3].abs().max() == 0
    layer.clear_symbolic(2, 3)  # the cached numeric mask follows in-place mask edits
    assert torch.allclose(_grads(layer, x, True)[0], _grads(layer, x, False)[0], atol=1e-12)


def test_cached_layout_follows_grid_updates():
    model, x = KAN([2, 3, 1], num_intervals=5, dtype=F64), _inputs(d=2)
    model(x)
    model.update_grid(x * 0.5, num_intervals=7)
    with layers.use_fast_path(False):
        plain = model(x)
    assert torch.allclose(model(x), plain, atol=1e-12)


def test_nan_input_gives_nan_output_without_index_errors():
    x = _inputs()
    x[5, 1] = float("nan")
    x[6, 0] = float("inf")
    for G in (5, 40):
        out = _layer(G=G)(x)
        assert torch.isnan(out[5]).all() and torch.isnan(out[6]).all() and torch.isfinite(out[7:]).all()


def _laplacian(model, points, fast):
    """Σ_i ∂²model/∂x_i² at ``points`` (differentiable), on the fused path or the plain one."""
    points = points.clone().requires_grad_(True)
    with layers.use_fast_path(fast):
        (grad,) = torch.autograd.grad(model(points).sum(), points, create_graph=True)
        return sum(torch.autograd.grad(grad[:, i].sum(), points, create_graph=True)[0][:, i] for i in range(2))


@pytest.mark.parametrize("G", [5, 40])
def test_second_derivatives_through_the_fused_path(G):
    """create_graph through the fused path equals the plain path, which matches finite differences."""
    model = KAN([2, 3, 1], num_intervals=G, dtype=F64, seed=2)
    x = _inputs(40, 2, spread=0.9)
    fast, plain = _laplacian(model, x, True), _laplacian(model, x, False)
    assert torch.allclose(fast, plain, atol=1e-9)
    h = 1e-5  # the second derivative is only continuous (C²) at knots: keep h far below the knot spacing
    with torch.no_grad():
        fd = sum(
            model(x + h * e) - 2 * model(x) + model(x - h * e) for e in torch.eye(2, dtype=F64)
        )[:, 0] / h**2
    assert torch.allclose(plain, fd, atol=1e-3 * max(1.0, fd.abs().max().item()))
    (param_grad,) = torch.autograd.grad(fast.pow(2).sum(), model.layers[0].coef)
    with layers.use_fast_path(False):
        (param_plain,) = torch.autograd.grad(_laplacian(model, x, False).pow(2).sum(), model.layers[0].coef)
    assert torch.allclose(param_grad, param_plain, atol=1e-8)


def test_second_derivatives_after_a_grid_update():
    """Nested autograd after a grid update on the Poisson experiment's points equals the plain
    path (the per-layer autograd wrapper that came before the whole-model one got this Laplacian
    wrong by 1e-4, and the PINN's parameter gradients by orders of magnitude)."""
    points = sample_collocation(100, 40, seed=0, dtype=F64)  # the Poisson experiment's sampling
    interior = points.interior
    model = KAN([2, 10, 1], num_intervals=3, dtype=F64, seed=0)
    model.update_grid(torch.cat([interior, points.boundary]))
    fast, plain = _laplacian(model, interior, True), _laplacian(model, interior, False)
    assert torch.allclose(fast, plain, rtol=0, atol=1e-10), float((fast - plain).abs().max())


def test_non_uniform_grids_run_fused_with_the_kernel_and_keep_second_derivatives():
    """After pykan's grid update (non-uniform knots) the kernel runs the layers (without it, the
    plain ops); first and second derivatives, and the parameter gradient of the Laplacian (the
    backward under create_graph re-runs the plain ops), equal the plain path's."""
    model = KAN([2, 3, 1], num_intervals=6, dtype=F64, seed=2)
    x = _inputs(60, 2, spread=0.9)
    model.update_grid(x**3, uniform_fraction=0.02)
    assert all(layer.fusable for layer in model.layers)
    with native.use_native(False):
        assert not any(layer.fusable for layer in model.layers)
    assert not any(layer.uniform for layer in model.layers)
    out_fast, grads_fast = _grads(model.layers[0], x, True)
    out_plain, grads_plain = _grads(model.layers[0], x, False)
    assert torch.allclose(out_fast, out_plain, rtol=0, atol=1e-12)
    for fast, plain in zip(grads_fast, grads_plain):
        assert torch.allclose(fast, plain, rtol=0, atol=1e-10)
    fast, plain = _laplacian(model, x, True), _laplacian(model, x, False)
    assert torch.allclose(fast, plain, rtol=0, atol=1e-10)
    coef = model.layers[1].coef
    (param_fast,) = torch.autograd.grad(fast.pow(2).sum(), coef)
    (param_plain,) = torch.autograd.grad(plain.pow(2).sum(), coef)
    assert torch.allclose(param_fast, param_plain, rtol=0, atol=1e-9)


def test_local_basis_on_uniform_grids_matches_cox_de_boor():
    for k in (1, 2, 3, 5):
        G = 6
        grid = spline.uniform_grid(torch.tensor([-1.0, -2.5], dtype=F64), torch.tensor([1.0, 0.5], dtype=F64), G, k)
        x = torch.rand(500, 2, dtype=F64, generator=torch.Generator().manual_seed(k)) * 8 - 4
        start, step = spline.uniform_spacing(grid)
        values, slopes, floor = spline.local_basis(((x.T - start) / step).contiguous(), k, True)
        columns = spline.local_columns(spline.padded_cell(floor, G + k, k), k)
        values, slopes, columns = (t.permute(2, 1, 0) for t in (values, slopes, columns))  # [batch, in, k+1]
        functions = slice(k + 1, 2 * k + 1 + G)  # the layout of spline.pad_functions
        width = spline.pad_functions(torch.zeros(G + k), k).numel()
        dense = torch.zeros(500, 2, width, dtype=F64).scatter_(-1, columns, values)
        assert torch.allclose(dense[..., functions], spline.bspline_basis(x, grid, k), atol=1e-12)
        if k > 1:  # derivative of a C^1 spline; compare with autograd through Cox-de Boor
            xr = x.clone().requires_grad_(True)
            w = torch.randn(500, 2, G + k, dtype=F64, generator=torch.Generator().manual_seed(9))
            (ref,) = torch.autograd.grad((spline.bspline_basis(xr, grid, k) * w).sum(), xr)
            deriv = torch.zeros_like(dense).scatter_(-1, columns, slopes)
            assert torch.allclose((deriv[..., functions] * w).sum(-1) / step.T, ref, atol=1e-9)


def test_local_basis_with_a_model_axis_equals_each_model():
    gen = torch.Generator().manual_seed(0)
    for dtype, k in ((F64, 3), (torch.float32, 2)):
        u = torch.rand(3, 4, 50, generator=gen, dtype=dtype) * 20 - 5  # [M, in, batch]
        stacked = spline.local_basis(u, k, derivative=True)
        for m in range(3):
            for whole, single in zip(stacked, spline.local_basis(u[m], k, derivative=True)):
                assert torch.equal(whole[m], single)


def test_float32_fused_path_is_accurate():
    layer, x = _layer(), _inputs()
    out64 = layer(x)
    layer32 = layer.float()
    assert math.isclose(0, (layer32(x.float()).double() - out64).abs().max().item(), abs_tol=1e-5)
