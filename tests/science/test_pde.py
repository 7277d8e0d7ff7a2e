"""Poisson PINN: autograd derivatives through KANs, the exact solution, and a short fit."""

import math

import pytest
import sympy as sp
import torch

from kan import KAN, MLP
from kan.layers import use_fast_path
from kan.science import pde

F64 = torch.float64


def _points(n=40, seed=0, half_width=0.9):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 2, generator=generator, dtype=F64) * 2 - 1) * half_width


def _finite_difference_laplacian(fn, x, h=1e-4):
    total = -2 * x.shape[1] * fn(x)
    for i in range(x.shape[1]):
        step = torch.zeros_like(x)
        step[:, i] = h
        total = total + fn(x + step) + fn(x - step)
    return total / h**2


@pytest.mark.parametrize("fast", [True, False], ids=["fused", "plain"])
def test_kan_laplacian_matches_finite_differences(fast):
    model = KAN([2, 4, 3, 1], num_intervals=5, seed=1, dtype=F64)
    with torch.no_grad():  # make the splines matter as much as the base branch
        for layer in model.layers:
            layer.coef.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(2))
    x = _points()
    with use_fast_path(fast):
        _, lap = pde.laplacian(model, x)
        with torch.no_grad():
            reference = _finite_difference_laplacian(model, x)
    scale = reference.abs().max()
    assert scale > 0.1
    assert (lap - reference).abs().max() / scale < 1e-5


def test_mlp_laplacian_matches_finite_differences():
    model, x = MLP([2, 16, 16, 1], activation="tanh", seed=0, dtype=F64), _points()
    _, lap = pde.laplacian(model, x)
    with torch.no_grad():
        reference = _finite_difference_laplacian(model, x)
    assert (lap - reference).abs().max() / reference.abs().max() < 1e-5


def test_symbolic_kan_laplacian_matches_closed_form():
    # u = 0.7·exp(1.2·[1.5 sin(πx + 0.3) - 0.2 + (0.8y - 0.1)²] + 0.1) + 0.05
    model = KAN([2, 1, 1], num_intervals=5, seed=0, dtype=F64)
    model.layers[0].set_symbolic(0, 0, "sin", (math.pi, 0.3, 1.5, -0.2))
    model.layers[0].set_symbolic(1, 0, "x^2", (0.8, -0.1, 1.0, 0.0))
    model.layers[1].set_symbolic(0, 0, "exp", (1.2, 0.1, 0.7, 0.05))
    sx, sy = sp.symbols("x y")
    hidden = 1.5 * sp.sin(sp.pi * sx + 0.3) - 0.2 + (0.8 * sy - 0.1) ** 2
    u = 0.7 * sp.exp(1.2 * hidden + 0.1) + 0.05
    value_fn = sp.lambdify((sx, sy), u, "math")
    laplacian_fn = sp.lambdify((sx, sy), sp.diff(u, sx, 2) + sp.diff(u, sy, 2), "math")

    x = _points()
    values, lap = pde.laplacian(model, x)
    expected_values = torch.tensor([[value_fn(a, b)] for a, b in x.tolist()], dtype=F64)
    expected_lap = torch.tensor([[laplacian_fn(a, b)] for a, b in x.tolist()], dtype=F64)
    assert torch.allclose(values, expected_values, rtol=1e-12, atol=1e-12)
    assert torch.allclose(lap, expected_lap, rtol=1e-10, atol=1e-10)


def test_exact_solution_solves_the_problem():
    x = _points(200, half_width=1.0)
    u, lap = pde.laplacian(pde.exact_solution, x, create_graph=False)
    assert (lap - pde.source(x)).abs().max() < 1e-10
    _, grad = pde.gradient(pde.exact_solution, x)
    assert torch.allclose(grad, pde.exact_gradient(x), atol=1e-12)
    boundary = pde.sample_collocation(10, 80, seed=0).boundary
    assert pde.exact_solution(boundary).abs().max() < 1e-12
    errors = pde.solution_errors(pde.exact_solution, pde.evaluation_grid(21))
    assert errors == pytest.approx({"l2": 0.0, "h1": 0.0}, abs=1e-12)


def test_collocation_points_cover_domain_and_boundary():
    points = pde.sample_collocation(500, 80, seed=3)
    assert points.interior.shape == (500, 2) and points.boundary.shape == (80, 2)
    assert points.interior.abs().max() < 1
    on_edge = (points.boundary.abs() == 1).sum(dim=1)
    assert torch.all(on_edge >= 1)
    sides = torch.stack([points.boundary[:, 0] == -1, points.boundary[:, 0] == 1,
                         points.boundary[:, 1] == -1, points.boundary[:, 1] == 1]).sum(dim=1)
    assert sides.tolist() == [20, 20, 20, 20]
    again = pde.sample_collocation(500, 80, seed=3)
    assert torch.equal(points.interior, again.interior) and torch.equal(points.boundary, again.boundary)


def test_short_pinn_fit_reduces_the_error():
    points = pde.sample_collocation(200, 40, seed=0)
    model = KAN([2, 5, 1], num_intervals=5, seed=0, dtype=F64)
    model.update_grid(torch.cat([points.interior, points.boundary]))
    x_test = pde.evaluation_grid(31)
    before = pde.solution_errors(model, x_test)
    losses = pde.train_pinn(model, points, steps=5)
    after = pde.solution_errors(model, x_test)
    assert len(losses) == 5 and losses[-1] < losses[0]
    assert after["l2"] < 0.5 * before["l2"] and after["h1"] < 0.5 * before["h1"], (before, after)


@pytest.mark.slow
def test_experiment_table_and_plot(tmp_path):
    config = {
        "n_interior": 150, "n_boundary": 40, "kan_width": [2, 3, 1], "kan_grids": [3, 6], "kan_steps": 2,
        "mlp_widths": [[2, 5, 1], [2, 8, 8, 1]], "n_test_per_side": 11,
    }
    table = pde.run_pde_experiment(config)
    assert list(table.columns) == ["model", "shape", "grid", "n_params", "l2", "h1", "loss", "steps", "seconds"]
    assert table["model"].tolist() == ["KAN", "KAN", "MLP", "MLP"]
    assert table["grid"].tolist()[:2] == [3, 6] and table["grid"].isna().tolist()[2:] == [True, True]
    assert table["n_params"].tolist() == [9 * 8, 9 * 11, 21, 105]
    assert table["steps"].tolist() == [2, 4, 4, 4]
    assert (table[["l2", "h1"]] > 0).all().all() and (table["h1"] >= table["l2"]).all()
    path = pde.plot_pde_scaling(table, tmp_path / "pde.png")
    assert path.stat().st_size > 1000


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown option.*epochs.*pde"):
        pde.PDEConfig.from_dict({"n_interior": 10, "epochs": 3})
    assert pde.PDEConfig.paper().n_interior == 10000
