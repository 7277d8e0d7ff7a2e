"""Anderson models: localisation measures, Hamiltonians, agreement with exact edges."""

import numpy as np
import pytest

from kan.data.anderson import (
    TASKS,
    edge_agreement,
    exact_extended,
    fibonacci_ratio,
    fractal_dimension,
    generate,
    hamiltonian,
    ipr,
)

TINY = {"n_sites": 34, "n_realizations": 2, "n_train": 40, "n_test": 20}


@pytest.fixture(scope="module")
def default_data():
    return {model: generate(model, None, seed=0) for model in TASKS}


@pytest.mark.parametrize("model", list(TASKS))
def test_labels_agree_with_exact_edge_at_default_spec(default_data, model):
    data = default_data[model]
    assert edge_agreement(data) >= 0.97
    extended = data.train["extended"].mean()
    assert 0.2 < extended < 0.8  # both classes well represented
    assert data.meta["task"] == "classification" and data.meta["n_classes"] == 2


@pytest.mark.parametrize("model", list(TASKS))
def test_rows_are_consistent(default_data, model):
    data = default_data[model]
    frame = data.train
    assert list(frame.columns[: len(data.meta["inputs"])]) == data.meta["inputs"]
    assert frame["D"].between(0, 1 + 1e-9).all()
    np.testing.assert_array_equal(frame["extended"], (frame["D"] > 0.5).astype(int))
    for var, (lo, hi) in data.meta["ranges"].items():
        assert frame[var].between(lo, hi).all()
    assert len(frame) == 4000 and len(data.test) == 1000


def test_ipr_of_single_site_and_uniform_states():
    n = 55
    single = np.zeros((n, 1))
    single[7] = 3.0
    uniform = np.full((n, 1), 0.2)
    assert ipr(single)[0] == pytest.approx(1.0)
    assert ipr(uniform)[0] == pytest.approx(1 / n)
    dims = fractal_dimension(np.hstack([single, uniform]))
    np.testing.assert_allclose(dims, [0.0, 1.0], atol=1e-12)


def test_fibonacci_ratio():
    assert fibonacci_ratio(233) == 144 / 233
    assert fibonacci_ratio(610) == 377 / 610
    with pytest.raises(ValueError, match="Fibonacci"):
        fibonacci_ratio(234)


@pytest.mark.parametrize("model", list(TASKS))
def test_hamiltonians_are_symmetric_with_unit_nearest_neighbour_hopping(model):
    params = {"lambda": 1.3, "alpha": 0.4, "p": 1.1, "phi": 0.7}
    h = hamiltonian(model, 34, params)
    np.testing.assert_array_equal(h, h.T)
    n = np.arange(34)
    np.testing.assert_allclose(h[n, (n + 1) % 34], 1.0)
    cos = np.cos(2 * np.pi * (21 / 34) * n + 0.7)
    expected = {
        "mosaic": np.where(n % 2 == 0, 1.3 * cos, 0.0),
        "gaam": 2.6 * cos / (1 - 0.4 * cos),
        "maam": 1.3 * cos,
    }[model]
    np.testing.assert_allclose(np.diag(h), expected)
    if model == "maam":
        assert h[0, 3] == pytest.approx(np.exp(-2 * 1.1)) and h[0, 33] == pytest.approx(1.0)
    else:
        assert np.count_nonzero(h - np.diag(np.diag(h))) == 2 * 34


def test_exact_edges():
    E = np.array([-1.0, 0.5, 3.0])
    np.testing.assert_array_equal(exact_extended("mosaic", E, {"lambda": 1.0}), [True, True, False])
    gaam = exact_extended("gaam", E, {"lambda": np.full(3, 0.5), "alpha": np.full(3, 0.5)})
    np.testing.assert_array_equal(gaam, 0.5 * E < 1.0)
    maam = exact_extended("maam", E, {"lambda": np.full(3, 2.0), "p": np.zeros(3)})
    np.testing.assert_array_equal(maam, E > 1.0)
    with pytest.raises(ValueError, match="unknown task 'aam'"):
        exact_extended("aam", E, {})


def test_spec_errors():
    with pytest.raises(ValueError, match="exceeds the 68 states"):
        generate("mosaic", {**TINY, "n_train": 60}, 0)
    with pytest.raises(ValueError, match="Fibonacci"):
        generate("gaam", {**TINY, "n_sites": 35}, 0)
    with pytest.raises(ValueError, match="threshold"):
        generate("maam", {**TINY, "threshold": 1.5}, 0)
    with pytest.raises(ValueError, match="bad range of 'alpha'"):
        generate("gaam", {**TINY, "ranges": {"alpha": [0.5, -0.5]}}, 0)


def test_deviations_state_the_sizes_the_spec_sets():
    """The paper is silent on the sizes, so the dataset's note names the ones it was made with
    (not the defaults: the paper profile's N = 610 was once reported as the default 233)."""
    note = generate("gaam", {**TINY, "threshold": 0.4}, 0).meta["deviations"][0]
    assert "N = 34 (b = 21/34" in note and "2 diagonalisations" in note
    assert "40 train / 20 test states" in note and "D > 0.4" in note
