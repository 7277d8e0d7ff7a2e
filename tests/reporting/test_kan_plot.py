"""KAN diagrams (alpha = tanh(β·A), masked edges hidden) and training curves."""

import copy
import math

import pytest
import torch

from kan import KAN
from kan.plot import diagram_edges, edge_alphas, grid_switches, plot_history, plot_kan
from kan.train import TrainConfig, fit

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained():
    """A [2,3,1] KAN fitted for a few steps on x·y, with its inputs and history."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 2, generator=gen, dtype=torch.float64) * 2 - 1
    data = {"train_input": x, "train_label": x[:, :1] * x[:, 1:], "test_input": x, "test_label": x[:, :1] * x[:, 1:]}
    model = KAN([2, 3, 1], seed=0, dtype="float64")
    result = fit(model, data, TrainConfig(steps=3, grid_schedule=(3, 5)))
    return model, x, result.history


def test_alpha_is_tanh_of_beta_times_relative_score(trained):
    model, x, _ = trained
    for beta in (1.0, 3.0):
        for alpha, score in zip(edge_alphas(model, x, beta), model.edge_scores(x)):
            expected = torch.tanh(beta * score / score.max())
            torch.testing.assert_close(alpha, expected)
            assert alpha.max().item() == pytest.approx(math.tanh(beta))


def test_masked_edges_are_hidden(trained):
    model, x, _ = trained
    pruned = copy.deepcopy(model)
    pruned.layers[0].mask[1, 2] = 0.0
    edges = {(e.layer, e.i, e.j) for e in diagram_edges(pruned, x)}
    assert len(edges) == 2 * 3 + 3 - 1
    assert (0, 1, 2) not in edges
    assert edge_alphas(pruned, x)[0][1, 2].item() == 0.0


def test_edge_curves_span_the_input_range(trained):
    model, x, _ = trained
    edge = next(e for e in diagram_edges(model, x) if (e.layer, e.i, e.j) == (0, 1, 0))
    assert (edge.x[0], edge.x[-1]) == pytest.approx((x[:, 1].min().item(), x[:, 1].max().item()))
    inputs = torch.zeros(len(edge.x), 2, dtype=torch.float64)
    inputs[:, 1] = torch.from_numpy(edge.x)
    expected = model.layers[0].edge_activations(inputs)[:, 1, 0].detach().numpy()
    assert edge.y == pytest.approx(expected)


def test_plot_kan_writes_the_format_its_path_names(trained, tmp_path):
    model, x, _ = trained
    symbolic = copy.deepcopy(model)
    symbolic.layers[1].set_symbolic(0, 0, "sin", (1.0, 0.0, 1.0, 0.0))
    assert [e.symbol for e in diagram_edges(symbolic, x) if e.layer == 1] == ["sin", None, None]
    path = plot_kan(symbolic, x, tmp_path / "kan.png", input_names=["x", "y"], output_names=["xy"], title="[2,3,1]")
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000
    assert plot_kan(model, x, tmp_path / "kan.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in plot_kan(model, x, tmp_path / "kan.svg").read_bytes()[:500]
    for bad in (tmp_path / "kan", tmp_path / "kan.txt", tmp_path):
        with pytest.raises(ValueError, match="must be a file name ending in one of .*[.]png"):
            plot_kan(model, x, bad)
    with pytest.raises(ValueError, match="input_names has 3 names"):
        plot_kan(model, x, tmp_path / "bad.png", input_names=["a", "b", "c"])


def test_history_plot_marks_grid_switches(trained, tmp_path):
    _, _, history = trained
    assert grid_switches(history) == [(1.0, 3), (4.0, 5)]
    path = plot_history(history, tmp_path / "curves.png", title="x·y")
    assert path.read_bytes()[:8] == PNG
    assert grid_switches([{"step": 1, "grid": 0}]) == []  # MLPs have no grid
