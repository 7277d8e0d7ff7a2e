"""Special functions: finite targets and values checked against closed forms."""

import numpy as np
import pytest
from numpy.polynomial import legendre

from kan.data.special import TASKS, generate

NAMES = list(TASKS)


def _data(name, seed=0):
    return generate(name, None, seed)


@pytest.mark.parametrize("name", NAMES)
def test_targets_are_finite_and_inputs_in_range(name):
    data = _data(name)
    assert data.meta["inputs"] == ["x", "y"] and "scipy.special" in data.meta["formula"]
    for frame in (data.train, data.test):
        assert np.isfinite(frame["target"]).all()
        for var, (lo, hi) in data.meta["ranges"].items():
            assert frame[var].between(lo, hi).all()
    assert 0.05 < data.train["target"].std() < 5  # well scaled


@pytest.mark.parametrize("degree", [0, 1, 2])
def test_lpmv_m0_is_the_legendre_polynomial(degree):
    y = np.linspace(-0.8, 0.8, 17)
    values = TASKS["lpmv_m0"].func(np.full_like(y, degree), y)
    np.testing.assert_allclose(values, legendre.legval(y, [0] * degree + [1]), atol=1e-13)


def test_lpmv_m2_degree_2():
    y = np.linspace(-0.8, 0.8, 17)
    values = TASKS["lpmv_m2"].func(np.full_like(y, 2), y)
    np.testing.assert_allclose(values, 3 * (1 - y**2), atol=1e-12)


def test_spherical_harmonics_closed_forms():
    data = _data("sph_harm_m0_n1")
    polar = data.train["y"]
    expected = np.sqrt(3 / (4 * np.pi)) * np.cos(polar)
    np.testing.assert_allclose(data.train["target"], expected, atol=1e-14)
    data = _data("sph_harm_m1_n1")  # Condon-Shortley phase, real part of e^{i x}
    az, polar = data.train["x"], data.train["y"]
    expected = -0.5 * np.sqrt(3 / (2 * np.pi)) * np.sin(polar) * np.cos(az)
    np.testing.assert_allclose(data.train["target"], expected, atol=1e-14)
    data = _data("sph_harm_m2_n2")
    az, polar = data.train["x"], data.train["y"]
    expected = 0.25 * np.sqrt(15 / (2 * np.pi)) * np.sin(polar) ** 2 * np.cos(2 * az)
    np.testing.assert_allclose(data.train["target"], expected, atol=1e-14)


def test_half_integer_bessel_functions_in_closed_form():
    z = np.linspace(1.0, 2.0, 11)
    half = np.full_like(z, 0.5)  # x is the order, y the argument
    root = np.sqrt(2 / (np.pi * z))
    np.testing.assert_allclose(TASKS["jv"].func(half, z), root * np.sin(z), rtol=1e-12)
    np.testing.assert_allclose(TASKS["yv"].func(half, z), -root * np.cos(z), rtol=1e-12)
    np.testing.assert_allclose(TASKS["iv"].func(half, z), root * np.sinh(z), rtol=1e-12)
    kv_half = np.sqrt(np.pi / (2 * z)) * np.exp(-z)
    np.testing.assert_allclose(TASKS["kv"].func(half, z), kv_half, rtol=1e-12)


def test_elliptic_functions_at_m_zero():
    u = np.linspace(-1.5, 1.5, 13)
    zero = np.zeros_like(u)
    np.testing.assert_allclose(TASKS["ellipj"].func(u, zero), np.sin(u), atol=1e-14)
    np.testing.assert_allclose(TASKS["ellipkinc"].func(u, zero), u, atol=1e-14)
    np.testing.assert_allclose(TASKS["ellipeinc"].func(u, zero), u, atol=1e-14)
    np.testing.assert_allclose(TASKS["ellipj"].func(u, np.ones_like(u)), np.tanh(u), atol=1e-12)


def test_deviation_records_complex_to_real_choice():
    assert any("real part" in d for d in _data("sph_harm_m1_n2").meta["deviations"])
    assert any("sn" in d for d in _data("ellipj").meta["deviations"])
