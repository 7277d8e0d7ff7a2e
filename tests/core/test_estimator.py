"""The scikit-learn style estimator: fit/predict/score, snapping to a formula, parameters."""

import math

import numpy as np
import pytest
import sympy

from kan.estimator import KANRegressor


@pytest.mark.slow
def test_regressor_fits_snaps_and_exports_the_formula():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(600, 2))
    y = X[:, 0] ** 2 + np.sin(math.pi * X[:, 1])
    model = KANRegressor(refine_steps=30, refine_grids=(10, 20)).fit(X, y)
    X_test = rng.uniform(-1, 1, size=(200, 2))
    y_test = X_test[:, 0] ** 2 + np.sin(math.pi * X_test[:, 1])
    assert model.predict(X_test).shape == (200,) and model.score(X_test, y_test) > 0.999
    (formula,) = model.auto_symbolic().formula(["x", "y"])
    x, t = sympy.symbols("x y")
    values = sympy.lambdify((x, t), formula, "numpy")(X_test[:, 0], X_test[:, 1])
    assert np.max(np.abs(values - y_test)) < 1e-8  # the snapped formula is exact, not an approximation
    assert formula.atoms(sympy.sin) and formula.free_symbols == {x, t}


@pytest.mark.slow
def test_columns_on_different_scales_each_get_their_own_grid():
    # x1 in [0, 1] and x2 in [0, 1000]: with one grid over [0, 1000] for both, all of x1 would fall in
    # one of the G = 5 intervals while the KAN is sparsified and pruned, and the refined KAN fit worse
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 1, size=(800, 2)) * np.array([1.0, 1000.0])
    y = np.sin(2 * math.pi * X[:, 0]) + (X[:, 1] / 1000) ** 2
    model = KANRegressor(refine_steps=30, refine_grids=(10,)).fit(X[:600], y[:600])
    assert model.score(X[600:], y[600:]) > 0.999
    first = model.model_.layers[0]
    k = first.order
    assert first.grid[0, k] >= 0 and first.grid[0, -k - 1] <= 1  # x1's knots span x1's samples
    assert first.grid[1, -k - 1] > 900  # x2's span x2's


def test_parameters_follow_scikit_learn_conventions():
    model = KANRegressor(grid=7)
    assert model.get_params()["grid"] == 7 and model.set_params(lamb=0.02) is model and model.lamb == 0.02
    # scikit-learn's clone rebuilds from get_params and checks each value is the object itself
    assert all(value is getattr(model, name) for name, value in model.get_params().items())
    with pytest.raises(ValueError, match="unknown parameter"):
        model.set_params(gird=3)
    with pytest.raises(ValueError, match="X must be 2-d"):
        model.fit(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="y must be"):
        model.fit(np.zeros((5, 2)), np.zeros(4))


def test_bad_data_and_unfitted_use_are_named():
    with pytest.raises(RuntimeError, match="not fitted yet"):
        KANRegressor().predict([[0.1, 0.2]])
    with pytest.raises(ValueError, match="X contains NaN"):
        KANRegressor().fit([[float("nan"), 1.0], [0.0, 1.0]], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"column\(s\) \[1\] of X .*every value is 1.0"):
        KANRegressor().fit([[0.0, 1.0], [2.0, 1.0]], [1.0, 2.0])
    with pytest.raises(ValueError, match="unsupported dtype 'float16'"):
        KANRegressor(dtype="float16").fit([[0.0], [1.0]], [1.0, 2.0])


def test_scikit_learns_own_tools_take_the_regressor():
    sklearn = pytest.importorskip("sklearn")  # installed with mlflow; the library does not need it
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = X[:, 0] * X[:, 1]
    small = KANRegressor(hidden=(2,), sparsify_steps=3, refine_steps=3, refine_grids=(5,))
    assert sklearn.base.is_regressor(small) and sklearn.base.clone(small).get_params() == small.get_params()
    assert np.isfinite(cross_val_score(small, X, y, cv=2)).all()
    assert make_pipeline(StandardScaler(), small).fit(X, y).predict(X).shape == (200,)
