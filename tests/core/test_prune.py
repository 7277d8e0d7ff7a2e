"""Pruning: the node rule, exact copies into the smaller KAN, edge masks, no empty layers."""

import copy

import pytest
import torch

from kan import KAN, load_model
from kan.prune import apply_edge_masks, edge_masks, kept_nodes, node_scores, prune, select_nodes

F64 = torch.float64


def _x(n=400, d=3, seed=0):
    return torch.rand(n, d, dtype=F64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _model_with_dead_nodes():
    """[3, 6, 2]: hidden nodes 1 and 4 get no input, node 3 sends nothing; plus decorations to copy."""
    model = KAN([3, 6, 2], num_intervals=5, seed=1, dtype=F64)
    model.update_grid(_x(), uniform_fraction=0.5)  # non-uniform knots in every layer
    first, second = model.layers
    first.mask[:, [1, 4]] = 0.0
    second.mask[3, :] = 0.0
    first.mask[2, 0] = 0.0  # one single dead edge on a kept node
    first.set_symbolic(0, 5, "sin", (2.0, 0.3, 0.7, 0.1))
    second.set_symbolic(2, 1, "x^2", (1.5, -0.2, 0.4, 0.05))
    second.set_symbolic(4, 0, "exp", (1.0, 0.0, 1.0, 0.0))  # on a pruned node: must disappear
    return model


def _without(model, hidden):
    """A copy of ``model`` whose hidden nodes ``hidden`` contribute nothing downstream."""
    masked = copy.deepcopy(model)
    masked.layers[1].mask[hidden, :] = 0.0
    return masked


def test_node_scores_follow_the_paper_rule():
    model, x = KAN([3, 4, 2], num_intervals=5, seed=0, dtype=F64), _x()
    edges = model.edge_scores(x)
    (scores,) = node_scores(model, x)
    for node in range(4):
        assert scores[node] == min(edges[0][:, node].max(), edges[1][node, :].max())


def test_prune_drops_dead_nodes_and_keeps_the_function():
    model, x = _model_with_dead_nodes(), _x()
    pruned = prune(model, x)
    assert pruned.width == [3, 3, 2] and pruned.layers[0].uniform is False
    assert torch.allclose(pruned(x), _without(model, [1, 3, 4])(x), rtol=0, atol=1e-12)
    assert pruned.layers[0].mask[2, 0] == 0  # edge mask copied (kept node 0 stays node 0)
    assert pruned.layers[0].symbolic_names == {(0, 2): "sin"}  # hidden node 5 is now node 2
    assert pruned.layers[1].symbolic_names == {(1, 1): "x^2"}  # hidden node 2 is now node 1
    assert pruned.num_parameters() < model.num_parameters()


def test_pruned_model_saves_and_loads(tmp_path):
    x = _x()
    pruned = prune(_model_with_dead_nodes(), x)
    pruned.save(tmp_path / "pruned.pt")
    loaded = load_model(tmp_path / "pruned.pt")
    assert loaded.config() == pruned.config() and loaded.width == [3, 3, 2]
    assert torch.equal(loaded(x), pruned(x))


def test_threshold_needs_both_incoming_and_outgoing_strength():
    model, x = KAN([3, 4, 2], num_intervals=5, seed=0, dtype=F64), _x()
    with torch.no_grad():
        second = model.layers[1]
        second.coef[2] *= 1e-4  # node 2: strong inputs, weak outputs
        second.scale_base[2] *= 1e-4
    (scores,) = node_scores(model, x)
    assert model.edge_scores(x)[0][:, 2].max() > 1e-2 > scores[2]
    threshold = float(scores[[0, 1, 3]].min()) / 2
    assert kept_nodes(model, x, threshold) == [[0, 1, 2], [0, 1, 3], [0, 1]]  # inputs and outputs always kept
    assert prune(model, x, node_threshold=threshold).width == [3, 3, 2]
    weakest = min((0, 1, 3), key=lambda n: float(scores[n]))
    assert weakest not in kept_nodes(model, x, float(scores[weakest]))[1]  # "exceeds" is strict


def test_a_layer_is_never_cut_to_zero_nodes():
    model, x = KAN([3, 4, 2], num_intervals=5, seed=0, dtype=F64), _x()
    strongest = int(node_scores(model, x)[0].argmax())
    with pytest.warns(RuntimeWarning, match="no node of hidden layer 1 passes"):
        pruned = prune(model, x, node_threshold=1e9)
    assert pruned.width == [3, 1, 2]
    others = [n for n in range(4) if n != strongest]
    assert torch.allclose(pruned(x), _without(model, others)(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("threshold", [-1.0, float("nan"), float("inf"), "0.01"])
def test_thresholds_must_be_finite_and_non_negative(threshold):
    model, x = KAN([3, 3, 1], num_intervals=5, seed=0, dtype=F64), _x()
    with pytest.raises(ValueError, match="node threshold must be a finite number >= 0"):
        prune(model, x, node_threshold=threshold)
    with pytest.raises(ValueError, match="edge threshold must be a finite number >= 0"):
        prune(model, x, node_threshold=0.0, edge_threshold=threshold)


def test_edge_threshold_masks_weak_edges():
    model, x = KAN([3, 4, 2], num_intervals=5, seed=0, dtype=F64), _x()
    scores = model.edge_scores(x)
    threshold = float(torch.cat([s.flatten() for s in scores]).median())
    pruned = prune(model, x, node_threshold=0.0, edge_threshold=threshold)
    assert pruned.width == model.width
    for layer, layer_scores in zip(pruned.layers, scores):
        assert torch.equal(layer.mask, (layer_scores >= threshold).to(F64))


def test_apply_edge_masks_in_place_and_checks_shapes():
    model, x = KAN([3, 4, 2], num_intervals=5, seed=0, dtype=F64), _x()
    masks = edge_masks(model, x, threshold=0.0)
    assert all(bool((m == 1).all()) for m in masks)
    masks[0][1, 2] = 0.0
    apply_edge_masks(model, masks)
    assert model.layers[0].mask[1, 2] == 0 and model.edge_scores(x)[0][1, 2] == 0
    with pytest.raises(ValueError, match="one mask per layer"):
        apply_edge_masks(model, masks[:1])
    with pytest.raises(ValueError, match=r"shape \[4, 3\]"):
        apply_edge_masks(model, [torch.ones(4, 3), masks[1]])


def test_select_nodes_validates_its_selection():
    model = KAN([3, 4, 2], dtype=F64)
    with pytest.raises(ValueError, match="3 node layers"):
        select_nodes(model, [[0, 1, 2], [0]])
    with pytest.raises(ValueError, match=r"keep\[1\] must list distinct node indices in \[0, 4\)"):
        select_nodes(model, [[0, 1, 2], [0, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"keep\[1\]"):
        select_nodes(model, [[0, 1, 2], [], [0, 1]])


def test_only_a_kan_is_pruned():
    from kan import MLP

    with pytest.raises(TypeError, match="prune removes hidden nodes of a KAN, got MLP"):
        prune(MLP([2, 3, 1]), torch.rand(10, 2))
