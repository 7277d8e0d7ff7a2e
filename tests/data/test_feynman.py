"""Feynman equations: finite over their ranges, labels equal the sympy formula."""

import itertools

import numpy as np
import pandas as pd
import pytest
import sympy as sp

from kan.data.feynman import TASKS, generate
from kan.data.sampling import lambdify_outputs

NAMES = list(TASKS)


def test_all_27_equations_with_human_shapes():
    assert len(TASKS) == 27
    for task in TASKS.values():
        assert task.shape[0] == len(task.ranges) and task.shape[-1] == 1


@pytest.mark.parametrize("name", NAMES)
def test_labels_are_finite_and_match_sympy(name):
    data = generate(name, None, seed=0)
    for frame in (data.train, data.test):
        assert np.isfinite(frame.to_numpy()).all()
    expr = TASKS[name].outputs["target"]
    assert data.meta["formula"] == str(expr)
    rows = data.train.sample(4, random_state=0)
    for _, row in rows.iterrows():
        subs = {sp.Symbol(v): sp.Float(row[v], 30) for v in data.meta["inputs"]}
        value = expr.evalf(30, subs=subs)
        assert value.is_real
        assert float(value) == pytest.approx(row["target"], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_finite_near_every_corner_of_the_range_box(name):
    task = TASKS[name]
    shrunk = [(lo + 1e-6 * (hi - lo), hi - 1e-6 * (hi - lo)) for lo, hi in task.ranges.values()]
    corners = pd.DataFrame(list(itertools.product(*shrunk)), columns=list(task.ranges))
    values = lambdify_outputs(task.outputs)(corners)["target"]
    assert np.isfinite(values).all()


def test_known_pitfalls():
    a, b = sp.symbols("a b")
    assert sp.simplify(TASKS["I.16.6"].outputs["target"] - (a + b) / (1 + a * b)) == 0
    assert sp.simplify(TASKS["I.18.4"].outputs["target"] - (1 + a * b) / (1 + a)) == 0
    assert generate("I.16.6", None, 0).meta["ranges"] == {"a": [-1.0, 1.0], "b": [-1.0, 1.0]}


def test_range_override_is_used_and_recorded():
    data = generate("I.13.12", {"ranges": {"b": [1.0, 1.5]}, "n_train": 10}, seed=0)
    assert data.train["b"].between(1.0, 1.5).all()
    assert data.meta["spec"]["ranges"]["b"] == [1.0, 1.5]
    assert len(data.train) == 10


def test_unknown_spec_key_is_named():
    with pytest.raises(ValueError, match="unknown key 'noise' in spec for feynman/I.6.20"):
        generate("I.6.20", {"noise": 0.1}, seed=0)


# The paper's [2,1,1] human shapes compute Φ(φ₁(x₁) + φ₂(x₂)). Each decomposition below is the
# construction the shape implies; on the box we sample, the inner functions must be finite and
# smooth (logarithms of arguments bounded away from 0) and the composition must equal the formula,
# or the human KAN cannot fit the data whatever its budget.
_LOG_SUM = {  # name -> (φ₁, φ₂, Φ) as functions of numpy arrays
    "I.30.5": (np.log, lambda n: -np.log(n), lambda u: np.arcsin(np.exp(u))),
    "I.40.1": (np.log, lambda a: -a, np.exp),
    "II.35.18": (np.log, lambda a: -np.log(np.exp(a) + np.exp(-a)), np.exp),
    "II.38.3": (np.log, lambda b: -np.log(b), np.exp),
    "III.10.19": (np.square, np.square, lambda u: np.sqrt(1 + u)),
}


@pytest.mark.parametrize("name", sorted(_LOG_SUM))
def test_two_input_human_shapes_can_represent_the_formula_on_the_sampled_box(name):
    assert TASKS[name].shape == (2, 1, 1)
    data = generate(name, None, seed=0)
    inner_1, inner_2, outer = _LOG_SUM[name]
    first, second = (data.train[v].to_numpy() for v in data.meta["inputs"])
    with np.errstate(all="ignore"):
        parts = inner_1(first), inner_2(second)
    assert all(np.isfinite(p).all() and np.abs(p).max() < 10 for p in parts), "inner functions finite and bounded"
    np.testing.assert_allclose(outer(parts[0] + parts[1]), data.train["target"].to_numpy(), rtol=1e-10, atol=1e-12)


def test_the_six_input_human_shape_can_represent_the_gravity_law_on_the_sampled_box():
    """I.9.18 in [6,4,2,1,1]: layer 1 gives b - 1, c - d, e - f and ln a; layer 2 the denominator D
    (a sum of squares) and ln a again; layer 3 ln a - ln D; the output exp. Every inner value must
    be finite and bounded on the box (a > 0, D bounded away from 0)."""
    assert TASKS["I.9.18"].shape == (6, 4, 2, 1, 1)
    data = generate("I.9.18", None, seed=0).train
    log_a = np.log(data["a"].to_numpy())
    denominator = (data["b"] - 1) ** 2 + (data["c"] - data["d"]) ** 2 + (data["e"] - data["f"]) ** 2
    log_d = np.log(denominator.to_numpy())
    assert np.isfinite(log_a).all() and np.abs(log_a).max() < 10 and np.abs(log_d).max() < 10
    np.testing.assert_allclose(np.exp(log_a - log_d), data["target"].to_numpy(), rtol=1e-10, atol=1e-12)
