"""Symbolic snapping: affine fits, ranking, snapping edges, and exact sympy export."""

import math

import numpy as np
import pytest
import sympy
import torch

from kan import KAN, spline
from kan.symbolic import auto_symbolic, fix_symbolic, suggest_symbolic, symbolic_formula
from kan.symbolic_fit import fit_affine
from kan.symbolic_library import SymbolicFunction, get_function

F64 = torch.float64
X = torch.linspace(-1, 1, 400, dtype=F64)


def _curve(name, params, x=X):
    a, b, c, d = params
    return c * get_function(name).torch_fn(a * x + b) + d


# What the data determine: c·exp(a·x + b) only fixes c·e^b, (a·x + b)² only a²·c and b/a, ...
INVARIANTS = {
    "sin": lambda a, b, c, d: (abs(a), abs(c), d),
    "x^2": lambda a, b, c, d: (c * a**2, b / a, d),
    "exp": lambda a, b, c, d: (a, c * math.exp(b), d),
    "gaussian": lambda a, b, c, d: (abs(a), b / a, c, d),
}


@pytest.mark.parametrize(
    "name, params",
    [("sin", (2.3, 0.4, 1.7, -0.3)), ("x^2", (1.5, 0.3, 0.8, 0.1)), ("exp", (1.2, 0.5, 0.7, 0.5)),
     ("gaussian", (2.0, -0.5, 1.3, 0.2))],
)
def test_fit_affine_recovers_known_parameters(name, params):
    fitted, r2 = fit_affine(X, _curve(name, params), name)
    assert r2 > 0.9999
    assert np.allclose(INVARIANTS[name](*fitted), INVARIANTS[name](*params), rtol=0, atol=1e-6)
    assert torch.allclose(_curve(name, fitted), _curve(name, params), rtol=0, atol=1e-6)


def test_fit_affine_treats_non_finite_values_as_bad_fits():
    raw_log = SymbolicFunction("raw_log", torch.log, sympy.log, 2)  # NaN / -inf for arguments <= 0
    y = 0.5 * torch.log(2 * X + 3) + 1
    (a, b, c, d), r2 = fit_affine(X, y, raw_log)
    assert r2 > 0.9999 and torch.allclose(c * torch.log(a * X + b) + d, y, atol=1e-6)


def test_fit_affine_edge_cases():
    with pytest.raises(ValueError, match="unknown symbolic function 'sinc'"):
        fit_affine(X, X, "sinc")
    with pytest.raises(ValueError, match="same number"):
        fit_affine(X, X[:10], "sin")
    assert fit_affine(X, torch.full_like(X, 2.5), "sin") == ((1.0, 0.0, 0.0, 2.5), 1.0)


def _numeric_model(functions, grid=20):
    """A one-layer KAN whose edge (i, j) is a pure spline fitted to ``functions[i][j]`` on [-1, 1]."""
    n_in, n_out = len(functions), len(functions[0])
    model = KAN([n_in, n_out], num_intervals=grid, dtype=F64)
    layer = model.layers[0]
    x = X[:, None].repeat(1, n_in)
    target = torch.stack([torch.stack([fn(X) for fn in row], dim=1) for row in functions], dim=1)
    with torch.no_grad():
        layer.scale_base.zero_()
        layer.coef.copy_(spline.fit_coefficients(x, target, layer.grid, layer.order))
    return model, x


def test_suggestions_prefer_simple_functions_among_equally_good_fits():
    model, x = _numeric_model([[lambda t: 0.7 * t**2 - 0.2, lambda t: torch.sin(3 * t)]])
    parabola = suggest_symbolic(model, 0, 0, 0, x, top_k=4)
    assert len(parabola) == 4 and parabola[0].name == "x^2"  # cos/cosh/gaussian mimic it at more cost
    assert parabola[0].r2 > 1 - 1e-12 and [s.score for s in parabola] == sorted(s.score for s in parabola)
    assert suggest_symbolic(model, 0, 0, 1, x, library=["x", "x^3", "cos", "sin"])[0].name == "sin"
    with pytest.raises(IndexError, match=r"edge \(0, 0, 2\) outside a KAN of width \[1, 2\]"):
        suggest_symbolic(model, 0, 0, 2, x)


def test_fix_symbolic_fits_the_edge_and_replaces_it():
    model, x = _numeric_model([[lambda t: 0.5 * torch.exp(0.8 * t) + 0.1]])
    r2 = fix_symbolic(model, 0, 0, 0, "exp", x)
    layer = model.layers[0]
    assert r2 > 1 - 1e-10 and layer.symbolic_names == {(0, 0): "exp"}
    assert torch.allclose(model(x)[:, 0], 0.5 * torch.exp(0.8 * X) + 0.1, atol=1e-6)
    with pytest.raises(ValueError, match="unknown symbolic function 'sinc'"):
        fix_symbolic(model, 0, 0, 0, "sinc", x)


def test_auto_symbolic_snaps_every_live_edge():
    model, x = _numeric_model([[lambda t: torch.sin(2 * t), lambda t: t**2], [torch.exp, lambda t: 1e-5 * t + 2e-4]])
    snapped = auto_symbolic(model, x, library=["x", "x^2", "sin", "exp"])
    assert {edge: s.name for edge, s in snapped.items()} == {
        (0, 0, 0): "sin", (0, 0, 1): "x^2", (0, 1, 0): "exp", (0, 1, 1): "0"}
    assert snapped[(0, 1, 1)].params[3] == pytest.approx(2e-4)  # "0" keeps the edge's mean
    assert auto_symbolic(model, x) == {}  # nothing numeric is left


def test_auto_symbolic_leaves_poor_fits_numeric():
    model, x = _numeric_model([[lambda t: 2 * t, lambda t: torch.sin(3 * t)]])
    snapped = auto_symbolic(model, x, library=["x"], r2_threshold=0.99)
    assert list(snapped) == [(0, 0, 0)] and model.layers[0].symbolic_names == {(0, 0): "x"}
    with pytest.raises(ValueError, match=r"still numeric: \[\(0, 0, 1\)\]"):
        symbolic_formula(model)


def _symbolic_model():
    """[2, 3, 2] with every live edge symbolic (functions defined on all of R) and one dead edge."""
    model = KAN([2, 3, 2], dtype=F64, seed=4)
    names = iter(["sin", "x^2", "tanh", "exp", "x", "gaussian", "arctan", "x^3", "sigmoid", "cosh", "abs", "sin"])
    gen = torch.Generator().manual_seed(0)
    for layer in model.layers:
        layer.mask[0, 1] = 0.0  # stays numeric but dead: ignored by the export
        for i in range(layer.in_dim):
            for j in range(layer.out_dim):
                if (i, j) != (0, 1):
                    affine = (torch.rand(4, generator=gen, dtype=F64) * 2 - 1).tolist()
                    layer.set_symbolic(i, j, next(names), tuple(affine))
    return model


def test_formula_evaluates_exactly_like_the_model():
    model = _symbolic_model()
    x = torch.rand(300, 2, dtype=F64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    formulas = symbolic_formula(model)
    assert len(formulas) == 2 and set().union(*(f.free_symbols for f in formulas)) == set(sympy.symbols("x_1 x_2"))
    with torch.no_grad():
        expected = model(x).numpy()
    for out, formula in enumerate(formulas):
        values = sympy.lambdify(sympy.symbols("x_1 x_2"), formula, "numpy")(x[:, 0].numpy(), x[:, 1].numpy())
        assert np.max(np.abs(values - expected[:, out])) < 1e-10


def test_formula_rounding_and_variable_names():
    model = _symbolic_model()
    (first, _) = symbolic_formula(model, variables=["u", "v"], digits=2)
    assert {s.name for s in first.free_symbols} == {"u", "v"}
    assert all(abs(float(f) * 100 - round(float(f) * 100)) < 1e-9 for f in first.atoms(sympy.Float))
    with pytest.raises(ValueError, match="expected 2 variables, got 1"):
        symbolic_formula(model, variables=["u"])
    with pytest.raises(ValueError, match="variables must be distinct"):  # one name would merge two inputs
        symbolic_formula(model, variables=["u", sympy.Symbol("u")])


def test_auto_symbolic_arguments_are_checked():
    model, x = KAN([2, 1], dtype=torch.float64), torch.rand(20, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="non-empty library"):
        auto_symbolic(model, x, library=[])
    with pytest.raises(TypeError, match="got ndarray"):
        auto_symbolic(model, x.numpy())


def test_auto_symbolic_retrains_a_classifier_with_its_own_loss_and_checks_data_first():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(60, 2, dtype=torch.float64, generator=generator) * 2 - 1
    classes = (x[:, 0] > x[:, 1]).long()
    data = {"train_input": x, "train_label": classes, "test_input": x, "test_label": classes}
    model = KAN([2, 2], dtype=torch.float64)
    snapped = auto_symbolic(model, data, library=["x", "x^2"], between_steps=2, final_steps=2)
    assert len(snapped) == 4 and not model.layers[0].symbolic_mask.eq(0).any()
    fresh = KAN([2, 2], dtype=torch.float64)
    with pytest.raises(ValueError, match="train_label has class 2 but the model has 2 outputs"):
        auto_symbolic(fresh, {**data, "train_label": classes + 1}, library=["x"])
    assert fresh.layers[0].symbolic_mask.eq(0).all()  # nothing snapped before the error


@pytest.mark.parametrize("name, target", [("sqrt", lambda x: np.sqrt(np.clip(x, 0, None))),
                                          ("log", lambda x: np.log(np.clip(x, 1e-6, None))),
                                          ("arcsin", lambda x: np.arcsin(np.clip(2 * x, -1, 1)))])
def test_a_fit_never_leans_on_the_clamp_outside_the_functions_domain(name, target):
    """The torch twins clamp their argument to stay finite; a fit using the clamp matched the data
    while its exported formula (sqrt, log, arcsin of the raw argument) computed something else."""
    x = torch.linspace(-1, 1, 201, dtype=torch.float64)
    (a, b, c, d), r2 = fit_affine(x, torch.as_tensor(target(x.numpy())), name)
    f = get_function(name)
    assert f.domain is not None and bool(f.domain(a * x + b).all())  # every sample inside the domain
    formula = sympy.lambdify(sympy.Symbol("u"), c * f.sympy_fn(a * sympy.Symbol("u") + b) + d, "numpy")
    model = c * f.torch_fn(a * x + b) + d
    np.testing.assert_allclose(formula(x.numpy()), model.numpy(), rtol=1e-9, atol=1e-9)  # the formula is the fit
    assert r2 < 1 - 1e-6  # the kinked data is not sqrt/log/arcsin of an affine argument


def test_a_function_inside_its_domain_still_fits_exactly():
    x = torch.linspace(0.5, 2, 101, dtype=torch.float64)
    (a, b, c, d), r2 = fit_affine(x, 3 * torch.log(2 * x + 1) - 1, "log")
    assert r2 > 1 - 1e-10


def test_a_fit_refuses_samples_that_are_not_finite():
    x = torch.linspace(0, 1, 50, dtype=torch.float64)
    y = torch.sin(x)
    y[7] = float("nan")  # used to give NaN parameters that fix_symbolic installed without a word
    with pytest.raises(ValueError, match="x and y must be finite"):
        fit_affine(x, y, "sin")
