"""Pruning: the paper's node rule, edge masks, and the smaller KAN that remains.

Scores are the paper's L1 norms ``|φ|₁ = mean_s |φ(x_s)|`` from :meth:`KAN.edge_scores`.
A hidden node is kept when its strongest incoming *and* strongest outgoing edge both
exceed the threshold; input and output nodes are always kept.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Sequence

import torch
from torch import Tensor

from kan.models import KAN

_EDGE_TENSORS = ("coef", "scale_base", "scale_spline", "symbolic_affine", "mask", "symbolic_mask")  # [in, out, ...]


def node_scores(model: KAN, x: Tensor) -> list[Tensor]:
    """Score of every hidden node, one ``[width[l]]`` tensor per hidden layer ``l = 1..L-1``.

    The score is ``min(max incoming |φ|₁, max outgoing |φ|₁)``: a node passes a threshold θ
    exactly when both of the paper's conditions hold.
    """
    edges = model.edge_scores(x)
    return [torch.minimum(into.amax(dim=0), out.amax(dim=1)) for into, out in zip(edges[:-1], edges[1:])]


def kept_nodes(model: KAN, x: Tensor, threshold: float = 1e-2) -> list[list[int]]:
    """Indices of the nodes to keep in every node layer (``L + 1`` lists).

    A hidden layer where no node passes keeps its strongest node (with a warning) instead of
    being cut to zero nodes.
    """
    _check_threshold(threshold, "node threshold")
    keep = [list(range(model.width[0]))]
    for layer, scores in enumerate(node_scores(model, x), start=1):
        passing = torch.nonzero(scores > threshold).flatten().tolist()
        if not passing:
            passing = [int(scores.argmax())]
            warnings.warn(
                f"no node of hidden layer {layer} passes threshold {threshold:g}; keeping node {passing[0]} "
                f"(score {float(scores[passing[0]]):.3g}) so the layer is not empty",
                RuntimeWarning,
                stacklevel=2,
            )
        keep.append(passing)
    keep.append(list(range(model.width[-1])))
    return keep


def select_nodes(model: KAN, keep: Sequence[Sequence[int]]) -> KAN:
    """A new KAN holding only the nodes ``keep[l]`` of every node layer, with the kept edges'
    grids, coefficients, scales, masks and symbolic state copied exactly."""
    if len(keep) != len(model.width):
        raise ValueError(f"keep must list nodes for {len(model.width)} node layers, got {len(keep)}")
    for layer, (nodes, size) in enumerate(zip(keep, model.width)):
        if not nodes or len(set(nodes)) != len(nodes) or not all(0 <= n < size for n in nodes):
            raise ValueError(f"keep[{layer}] must list distinct node indices in [0, {size}), got {list(nodes)}")
    config = model.config()
    config["width"] = [len(nodes) for nodes in keep]
    smaller = KAN(**config).to(model.device)
    for old, new, inputs, outputs in zip(model.layers, smaller.layers, keep[:-1], keep[1:]):
        rows = torch.tensor(list(inputs), device=model.device)
        cols = torch.tensor(list(outputs), device=model.device)
        with torch.no_grad():
            new.grid = old.grid[rows].clone()
            for name in _EDGE_TENSORS:
                getattr(new, name).copy_(getattr(old, name)[rows][:, cols])
        new.uniform = old.uniform
        new_in = {int(n): k for k, n in enumerate(inputs)}
        new_out = {int(n): k for k, n in enumerate(outputs)}
        new.symbolic_names = {
            (new_in[i], new_out[j]): name
            for (i, j), name in old.symbolic_names.items()
            if i in new_in and j in new_out
        }
    return smaller


def edge_masks(model: KAN, x: Tensor, threshold: float) -> list[Tensor]:
    """Per layer ``[in, out]`` masks: 1 where an edge's ``|φ|₁`` reaches ``threshold``, else 0."""
    _check_threshold(threshold, "edge threshold")
    return [(scores >= threshold).to(scores.dtype) for scores in model.edge_scores(x)]


def _check_threshold(threshold: float, name: str) -> None:
    """Scores are mean absolute values: a threshold must be a finite number >= 0."""
    if not (isinstance(threshold, numbers.Real) and math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {threshold!r}")


def apply_edge_masks(model: KAN, masks: Sequence[Tensor]) -> None:
    """Switch edges off in place: every layer's mask is multiplied by ``masks[l]``."""
    if len(masks) != len(model.layers):
        raise ValueError(f"expected one mask per layer ({len(model.layers)}), got {len(masks)}")
    with torch.no_grad():
        for layer, mask in zip(model.layers, masks):
            if mask.shape != layer.mask.shape:
                raise ValueError(f"mask of shape {list(mask.shape)} does not fit a layer of shape {list(layer.mask.shape)}")
            layer.mask.mul_(mask.to(layer.mask))


def prune(model: KAN, x: Tensor, node_threshold: float = 1e-2, edge_threshold: float | None = None) -> KAN:
    """The paper's pruning: drop weak hidden nodes (see :func:`kept_nodes`) into a new, smaller
    KAN; with ``edge_threshold``, also mask that model's edges whose ``|φ|₁`` falls below it."""
    if not isinstance(model, KAN):
        raise TypeError(f"prune removes hidden nodes of a KAN, got {type(model).__name__}")
    if edge_threshold is not None:
        _check_threshold(edge_threshold, "edge threshold")  # before any work
    smaller = select_nodes(model, kept_nodes(model, x, node_threshold))
    if edge_threshold is not None:
        apply_edge_masks(smaller, edge_masks(smaller, x, edge_threshold))
    return smaller
