"""Paper section 4.1 end to end: sparsify → prune → refine → snap → retrain → formula.

Recipe (float64, 1000 train / 1000 test points, data seed 0): a [2,5,1] KAN with G = 5 is
trained 20 LBFGS steps with λ = 0.01 and μ2 = 10 (λ = 0.003 for xy, whose output is 3× smaller),
then pruned at θ = 1e-2. One round of this lands in the minimal network from only some initial
seeds, and which ones depends on the CPU (about half on the AVX2 AMD machine of earlier sessions,
2 of seeds 0–7 on an AVX-512 Intel one): the rest keep a second, split hidden node, a local
minimum. As in the paper's interactive loop, :func:`_sparsest` then sparsifies the pruned network
again and prunes it (up to ROUNDS rounds; on the Intel machine every seed 0–7 reached [2,1,1]
within three and went on to the exact formula), and restarts from the next model seed only if
that fails.
"""

import math
import warnings
from typing import Callable

import numpy as np
import pytest
import sympy
import torch
from torch import Tensor

from kan import KAN
from kan.prune import prune
from kan.symbolic import auto_symbolic, symbolic_formula
from kan.train import TrainConfig, fit

F64 = torch.float64
pytestmark = pytest.mark.slow


def _dataset(fn: Callable[[Tensor], Tensor], low: float, high: float) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(0)
    x_train, x_test = ((torch.rand(1000, 2, dtype=F64, generator=gen) * (high - low) + low) for _ in range(2))
    return {"train_input": x_train, "train_label": fn(x_train), "test_input": x_test, "test_label": fn(x_test)}


ROUNDS = 3  # sparsify-and-prune rounds per model seed


def _sparsest(data: dict[str, Tensor], width: list[int], lamb: float, grid_range: tuple[float, float]) -> KAN:
    """Sparsify and prune, again on the pruned network while it keeps extra nodes, from model
    seeds 0, 1, … until the pruned KAN has ``width``."""
    x = data["train_input"]
    found = []
    for seed in range(5):
        model = KAN([2, 5, 1], num_intervals=5, grid_range=grid_range, seed=seed, dtype=F64)
        for _ in range(ROUNDS):
            fit(model, data, TrainConfig(steps=20, lamb=lamb, lamb_entropy=10.0))
            with warnings.catch_warnings(record=True) as collapsed:  # no node passed: a failed seed too
                warnings.simplefilter("always", RuntimeWarning)
                model = prune(model, x)
            found.append(model.width)
            if collapsed or model.width == width or any(got < want for got, want in zip(model.width, width)):
                break
        if model.width == width and not collapsed:
            return model
    pytest.fail(f"no seed pruned to {width}; got {found}")


def _rmse(model: KAN, data: dict[str, Tensor]) -> float:
    with torch.no_grad():
        return torch.sqrt(torch.mean((model(data["test_input"]) - data["test_label"]) ** 2)).item()


def test_interactive_example_recovers_exp_sin_plus_square():
    data = _dataset(lambda x: torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:] ** 2), -1.0, 1.0)
    model = _sparsest(data, [2, 1, 1], lamb=0.01, grid_range=(-1.0, 1.0))
    fit(model, data, TrainConfig(steps=50, grid_schedule=(10, 20)))  # refine the pruned splines
    assert _rmse(model, data) < 1e-2

    snapped = auto_symbolic(model, data["train_input"])  # the full library
    assert {edge: s.name for edge, s in snapped.items()} == {(0, 0, 0): "sin", (0, 1, 0): "x^2", (1, 0, 0): "exp"}
    fit(model, data, TrainConfig(steps=10, lbfgs_history=100))  # only the affine parameters are live
    assert _rmse(model, data) < 1e-5

    x, y = sympy.symbols("x y")
    formula = symbolic_formula(model, [x, y])[0]
    evaluate = sympy.lambdify((x, y), formula, "numpy")
    inputs = data["test_input"].numpy()
    with torch.no_grad():
        expected = model(data["test_input"])[:, 0].numpy()
    assert np.max(np.abs(evaluate(inputs[:, 0], inputs[:, 1]) - expected)) < 1e-10
    (sine,) = formula.atoms(sympy.sin)
    assert abs(abs(float(sine.args[0].coeff(x))) - math.pi) < 1e-2
    clean = sympy.nsimplify(symbolic_formula(model, [x, y], digits=2)[0])
    assert sympy.simplify(clean - sympy.exp(sympy.sin(sympy.Rational(314, 100) * x) + y**2)) == 0


def test_product_prunes_to_two_hidden_nodes():
    data = _dataset(lambda x: x[:, :1] * x[:, 1:], -1.0, 1.0)
    model = _sparsest(data, [2, 2, 1], lamb=0.003, grid_range=(-1.0, 1.0))
    fit(model, data, TrainConfig(steps=30, grid_schedule=(10,)))
    assert _rmse(model, data) < 1e-3  # the pruned network still represents xy


def test_division_prunes_to_log_log_exp():
    """x/y = exp(log x − log y) on x, y ∈ [0.5, 2] (positive inputs, so log exists)."""
    data = _dataset(lambda x: x[:, :1] / x[:, 1:], 0.5, 2.0)
    model = _sparsest(data, [2, 1, 1], lamb=0.01, grid_range=(0.5, 2.0))
    fit(model, data, TrainConfig(steps=50, grid_schedule=(10,)))  # 30 steps: 1.6e-3 on the AVX2 AMD kind
    assert _rmse(model, data) < 1e-3

    library = ("x", "x^2", "x^3", "1/x", "sqrt", "exp", "log", "sin")  # a small library keeps this fast
    snapped = auto_symbolic(model, data["train_input"], library=library)
    assert {edge: s.name for edge, s in snapped.items()} == {(0, 0, 0): "log", (0, 1, 0): "log", (1, 0, 0): "exp"}
    fit(model, data, TrainConfig(steps=10, lbfgs_history=100))
    assert _rmse(model, data) < 1e-8
    x, y = sympy.symbols("x y")
    clean = sympy.nsimplify(symbolic_formula(model, [x, y], digits=2)[0])
    assert sympy.simplify(clean - x / y) == 0
