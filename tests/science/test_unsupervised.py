"""Unsupervised relation discovery on the synthetic 6-variable set."""

import math

import numpy as np
import pytest
import torch

from kan.data.synthetic import generate
from kan.science import unsupervised

RELATIONS = ({"x1", "x2", "x3"}, {"x4", "x5"})


@pytest.fixture(scope="module")
def positives():
    return generate("unsupervised_6var", {"n_train": 400, "n_test": 10}, seed=0).train


def test_contrastive_dataset_keeps_marginals(positives):
    x, y = unsupervised.contrastive_dataset(positives, np.random.default_rng(0), torch.float64)
    n = len(positives)
    assert x.shape == (2 * n, 6) and x.is_contiguous()
    assert y[:n].eq(1).all() and y[n:].eq(0).all()
    assert torch.equal(x[:n].sort(dim=0).values, x[n:].sort(dim=0).values)
    assert not torch.equal(x[:n], x[n:])


def test_discriminator_ends_in_the_fixed_gaussian():
    width = 0.5
    model = unsupervised.build_discriminator(6, unsupervised.DiscoveryConfig(gaussian_width=width), seed=0)
    x = torch.rand(50, 6, dtype=torch.float64) * 2 - 1
    hidden = model.layer_inputs(x)[1]
    assert torch.allclose(model(x), torch.exp(-hidden**2 / (2 * width**2)), atol=1e-12)
    assert model.layers[-1].symbolic_names == {(0, 0): "gaussian"}


@pytest.mark.slow
def test_seeds_find_one_true_relation_each(positives):
    table = unsupervised.discover_relations(positives, seeds=[0, 1, 2], config={"warmup_steps": 10, "steps": 20})
    found = [set(v.split(",")) for v in table["variables"] if v]
    assert found, table
    for variables in found:
        assert variables in RELATIONS, table
    assert table.loc[table["n_variables"] > 0, "accuracy"].min() > 0.85
    assert table[[f"score_x{i}" for i in range(1, 7)]].max(axis=1).tolist() == pytest.approx([1.0] * 3)
    assert math.isclose(table["score_x6"].max(), 0.0, abs_tol=0.05)
