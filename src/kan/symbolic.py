"""Symbolic snapping: rank library functions for an edge (fits and rank score:
:mod:`kan.symbolic_fit`), snap edges, and export the model as sympy formulas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import sympy
import torch
from torch import Tensor

from kan.composition import fit_composition
from kan.formula import distinct_symbols, normalise, round_floats
from kan.models import KAN
from kan.symbolic_fit import Affine, fit_affine, rank_score
from kan.symbolic_library import LIBRARY, ZERO, default_library, get_function
from kan.train import TrainConfig, check_dataset, fit

Edge = tuple[int, int, int]  # (layer, input node, output node)


@dataclass(frozen=True)
class Suggestion:
    """One candidate for an edge: function name, fitted ``(a, b, c, d)``, R², rank score."""

    name: str
    params: Affine
    r2: float
    complexity: int
    score: float


def _layer_samples(model: KAN, layer: int, x: Tensor) -> tuple[Tensor, Tensor]:
    """Layer ``layer``'s inputs ``[batch, in]`` and edge activations ``[batch, in, out]``."""
    with torch.no_grad():
        inputs = model.layer_inputs(x)[layer]
        return inputs, model.layers[layer].edge_activations(inputs)


def _edge_samples(model: KAN, edge: Edge, x: Tensor) -> tuple[Tensor, Tensor]:
    """Edge ``(l, i, j)``'s input samples and its activation ``φ`` at them, both ``[batch]``."""
    l, i, j = edge
    if not 0 <= l < len(model.layers) or not 0 <= i < model.width[l] or not 0 <= j < model.width[l + 1]:
        raise IndexError(f"edge {edge} outside a KAN of width {model.width}")
    inputs, phi = _layer_samples(model, l, x)
    return inputs[:, i], phi[:, i, j]


def _rank(inputs: Tensor, phi: Tensor, library: Iterable[str] | None, weight_simple: float) -> list[Suggestion]:
    """Every library function fitted to one edge's samples, best first."""
    names = list(default_library() if library is None else library)
    suggestions = []
    for name in names:
        f = get_function(name)
        params, r2 = fit_affine(inputs, phi, f)
        suggestions.append(Suggestion(name, params, r2, f.complexity, rank_score(r2, f.complexity, weight_simple)))
    order = {name: position for position, name in enumerate(LIBRARY)}
    return sorted(suggestions, key=lambda s: (s.score, s.complexity, order[s.name]))


def suggest_symbolic(
    model: KAN,
    l: int,
    i: int,
    j: int,
    x: Tensor,
    library: Iterable[str] | None = None,
    top_k: int = 5,
    weight_simple: float = 0.8,
) -> list[Suggestion]:
    """The ``top_k`` library functions for edge ``(l, i, j)``, best first (ranked as :mod:`kan.symbolic_fit` describes)."""
    inputs, phi = _edge_samples(model, (l, i, j), x)
    return _rank(inputs, phi, library, weight_simple)[:top_k]


def fix_symbolic(model: KAN, l: int, i: int, j: int, name: str, x: Tensor) -> float:
    """Snap edge ``(l, i, j)`` to ``name``, fitted to its current ``(input, φ)`` samples; returns R²."""
    f = get_function(name)
    params, r2 = fit_affine(*_edge_samples(model, (l, i, j), x), f)
    model.layers[l].set_symbolic(i, j, name, params)
    return r2


def auto_symbolic(
    model: KAN,
    data: Tensor | Mapping[str, Tensor],
    library: Iterable[str] | None = None,
    r2_threshold: float = 0.0,
    zero_threshold: float = 1e-3,
    weight_simple: float = 0.8,
    samples: int | None = 300,
    between_steps: int = 30,
    final_steps: int = 10,
    compositions: bool = True,
) -> dict[Edge, Suggestion]:
    """Snap every live numeric edge of ``model`` (in place) to its best suggestion, layer by layer;
    returns what was snapped, by ``(layer, in, out)``.

    ``data`` is either a dataset (the :func:`kan.train.fit` mapping) or input samples
    ``[batch, width[0]]``. With a dataset, the model retrains after each layer is snapped:
    ``between_steps`` L-BFGS steps, so that the later layers' splines adapt to the snapped ones
    before they are fitted in turn, and ``final_steps`` (history 100) after the last layer, when
    only the affine parameters ``(a, b, c, d)`` of symbolic edges are left; the fits see the first
    ``samples`` training inputs (all when None), with the loss its labels call for (cross-entropy
    for int64 class labels, else MSE). With samples alone nothing is trained: each
    layer is sampled after the layers before it were snapped.

    ``library`` defaults to :func:`kan.symbolic_library.default_library` (no ``"0"``); an edge
    with ``|φ|₁ < zero_threshold`` becomes ``"0"`` anyway (its mean kept as the constant ``d``).
    An edge whose best R² is below ``r2_threshold`` stays numeric.

    With ``compositions``, an edge into a hidden node that passes one function of one input on (its
    only live incoming and only live outgoing edge, both numeric) is snapped together with that
    outgoing edge as the best composition ``f(g(x))`` of two library functions
    (:mod:`kan.composition`): the two edges alone do not determine ``f`` and ``g``, their
    composite does.
    """
    library = list(default_library() if library is None else library)
    if not library:
        raise ValueError("auto_symbolic needs a non-empty library of function names (default: kan.default_library())")
    if not isinstance(model, KAN):
        raise TypeError(f"auto_symbolic snaps the edges of a KAN, got {type(model).__name__}")
    if not isinstance(data, (Tensor, Mapping)):
        raise TypeError(f"auto_symbolic expects input samples (a torch.Tensor) or a dataset mapping, got "
                        f"{type(data).__name__} (wrap arrays with torch.as_tensor)")
    dataset = None if isinstance(data, Tensor) else data
    loss = "mse"
    if dataset is not None:  # checked before any edge is snapped; class labels retrain with their own loss
        labels = dataset.get("train_label")
        loss = "cross_entropy" if isinstance(labels, Tensor) and labels.dtype == torch.int64 else "mse"
        check_dataset(dataset, model, loss)
    x = data if dataset is None else dataset["train_input"][:samples]
    snapped: dict[Edge, Suggestion] = {}
    last = len(model.layers) - 1
    for l, layer in enumerate(model.layers):
        inputs, phi = _layer_samples(model, l, x)
        numeric = (layer.mask != 0) & (layer.symbolic_mask == 0)
        for i, j in torch.nonzero(numeric).tolist():
            if float(phi[:, i, j].abs().mean()) < zero_threshold:
                zero = get_function(ZERO)
                params, r2 = fit_affine(inputs[:, i], phi[:, i, j], zero)
                score = rank_score(r2, zero.complexity, weight_simple)
                best = Suggestion(zero.name, params, r2, zero.complexity, score)
            elif compositions and (k := _chain_output(model, l, i, j)) is not None:
                snapped |= _snap_chain(model, (l, i, j), k, inputs[:, i], x, library, r2_threshold, weight_simple)
                continue
            else:
                best = _rank(inputs[:, i], phi[:, i, j], library, weight_simple)[0]
                if best.r2 < r2_threshold:
                    continue
            layer.set_symbolic(i, j, best.name, best.params)
            snapped[(l, i, j)] = best
        steps = final_steps if l == last else between_steps
        if dataset is not None and steps > 0:
            fit(model, dataset, TrainConfig(steps=steps, lbfgs_history=100 if l == last else 10, loss=loss))
    return snapped


def _chain_output(model: KAN, l: int, i: int, j: int) -> int | None:
    """``k`` when hidden node ``j`` after layer ``l`` has the one live incoming edge ``(i, j)`` and the
    one live outgoing edge ``(j, k)``, still numeric; else None."""
    if l + 1 >= len(model.layers):
        return None
    incoming = torch.nonzero(model.layers[l].mask[:, j] != 0).flatten().tolist()
    outer = model.layers[l + 1]
    outgoing = torch.nonzero(outer.mask[j] != 0).flatten().tolist()
    if incoming != [i] or len(outgoing) != 1 or outer.symbolic_mask[j, outgoing[0]] != 0:
        return None
    return outgoing[0]


def _snap_chain(model: KAN, edge: Edge, k: int, inputs: Tensor, x: Tensor, library: list[str], r2_threshold: float,
                weight_simple: float) -> dict[Edge, Suggestion]:
    """Snap the chain ``edge`` → ``(l + 1, j, k)`` to its best composition; both edges, or none when
    its R² is below ``r2_threshold``."""
    l, i, j = edge
    composite = _layer_samples(model, l + 1, x)[1][:, j, k]  # a function of inputs alone: j has one input
    best = fit_composition(inputs, composite, library, weight_simple)
    if best.r2 < r2_threshold:
        return {}
    score = rank_score(best.r2, best.complexity, weight_simple)
    model.layers[l].set_symbolic(i, j, best.inner, best.inner_params)
    model.layers[l + 1].set_symbolic(j, k, best.outer, best.outer_params)
    return {edge: Suggestion(best.inner, best.inner_params, best.r2, best.complexity, score),
            (l + 1, j, k): Suggestion(best.outer, best.outer_params, best.r2, best.complexity, score)}


def numeric_edges(model: KAN) -> list[Edge]:
    """Live edges (mask ≠ 0) that are not yet symbolic, as ``(layer, in, out)``."""
    return [
        (l, i, j)
        for l, layer in enumerate(model.layers)
        for i, j in torch.nonzero((layer.mask != 0) & (layer.symbolic_mask == 0)).tolist()
    ]


def symbolic_formula(
    model: KAN,
    variables: Sequence[sympy.Symbol | str] | None = None,
    digits: int | None = None,
    normalised: bool = True,
) -> list[sympy.Expr]:
    """One sympy expression per output: every live edge contributes ``c·f(a·x + b) + d``, nodes sum.

    ``variables`` name the inputs, distinct (default ``x_1 … x_n``). ``normalised`` formulas are passed
    through :func:`kan.formula.normalise` (factors pulled out of arguments, float noise dropped,
    phases reduced); ``False`` gives the model's arithmetic term by term. ``digits`` then rounds
    every float to that many decimal places. Raises ``ValueError`` naming the edges that are
    still numeric.
    """
    remaining = numeric_edges(model)
    if remaining:
        raise ValueError(f"cannot export a formula: live edges (layer, in, out) still numeric: {remaining}")
    if variables is None:
        variables = sympy.symbols(f"x_1:{model.width[0] + 1}")
    nodes = distinct_symbols(variables)
    if len(nodes) != model.width[0]:
        raise ValueError(f"expected {model.width[0]} variables, got {len(nodes)}")
    for layer in model.layers:
        outputs: list[sympy.Expr] = [sympy.Integer(0)] * layer.out_dim
        for (i, j), name in sorted(layer.symbolic_names.items()):
            mask = float(layer.mask[i, j])
            if mask == 0.0:
                continue
            a, b, c, d = (sympy.Float(v) for v in layer.symbolic_affine[i, j].tolist())
            term = c * get_function(name).sympy_fn(a * nodes[i] + b) + d
            outputs[j] += term if mask == 1.0 else sympy.Float(mask) * term
        nodes = outputs
    if normalised:
        nodes = [normalise(expr) for expr in nodes]
    if digits is not None:
        nodes = [round_floats(expr, digits) for expr in nodes]
    return nodes
