"""Compositions f(g(x)) of two library functions, fitted to a chain's composite."""

import pytest
import torch

from kan.composition import fit_composition
from kan.symbolic_library import default_library

X = torch.rand(300, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1


@pytest.mark.slow
def test_an_outer_function_with_extrema_is_found():
    """sin(2x²): sin is not monotone on the composite's range, so only the smooth placement finds x²."""
    found = fit_composition(X, torch.sin(2 * X**2), default_library())
    assert (found.inner, found.outer) == ("x^2", "sin") and found.r2 > 1 - 1e-12
    a, b, _, _ = found.inner_params
    alpha, beta, c, d = found.outer_params
    rebuilt = c * torch.sin(alpha * (a * X + b) ** 2 + beta) + d
    assert torch.allclose(rebuilt, torch.sin(2 * X**2), atol=1e-9)


def test_an_empty_library_is_an_error():
    with pytest.raises(ValueError, match="non-empty library"):
        fit_composition(X, X, [])
