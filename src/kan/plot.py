"""KAN diagrams and training curves as PNG files.

Figures are built on ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot state), so
they work headless and in worker processes.

Edge transparency follows the paper, alpha = tanh(β·A) with β = 3, where A is the edge's
magnitude. The paper does not say what A is measured against; we use
``A = |φ|₁ / max |φ|₁`` over the live edges of the same layer (``|φ|₁ = mean_s |φ(x_s)|``,
the pruning score). The strongest edge of every layer is then drawn almost opaque
(tanh 3 ≈ 0.995), the alphas do not depend on the scale of the data, and in a layer of weak
edges the one that matters still stands out. Masked (pruned) edges are not drawn; symbolic
edges are drawn in red with their function name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from kan.models import KAN

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CURVE_SAMPLES = 64
LAYER_GAP = 2.0  # vertical distance between node rows; activation boxes sit half-way
BOX_HALF_HEIGHT = 0.35
MAX_BOX_HALF_WIDTH = 0.3  # inches
NUMERIC_COLOR = np.array([0.0, 0.0, 0.0])
SYMBOLIC_COLOR = np.array([0.8, 0.1, 0.1])


@dataclass(frozen=True)
class DiagramEdge:
    """One drawn edge: layer, input node i, output node j, alpha, symbolic name and its curve."""

    layer: int
    i: int
    j: int
    alpha: float
    symbol: str | None  # function name of a symbolic edge, None for a spline edge
    x: np.ndarray  # [samples] inputs over the range this edge sees
    y: np.ndarray  # [samples] φ(x)


def edge_alphas(model: KAN, x: Tensor, beta: float = 3.0) -> list[Tensor]:
    """Per layer ``[in, out]``: ``tanh(β·A)``, A = |φ|₁ relative to the layer's largest; masked edges 0."""
    alphas = []
    for layer, score in zip(model.layers, model.edge_scores(x)):
        live = layer.mask > 0
        score = torch.where(live, score, torch.zeros_like(score))
        top = score.max()
        relative = score / top if top > 0 else torch.zeros_like(score)
        alphas.append(torch.tanh(beta * relative) * live)
    return alphas


@torch.no_grad()
def diagram_edges(model: KAN, x: Tensor, beta: float = 3.0) -> list[DiagramEdge]:
    """Every live (unmasked) edge with its alpha and its curve φ over the range of its input samples."""
    alphas = edge_alphas(model, x, beta)
    edges = []
    for index, (layer, inputs) in enumerate(zip(model.layers, model.layer_inputs(x)[:-1])):
        low, high = inputs.min(dim=0).values, inputs.max(dim=0).values  # [in]
        t = torch.linspace(0, 1, CURVE_SAMPLES, dtype=inputs.dtype, device=inputs.device)[:, None]
        grid = low + t * (high - low)  # [samples, in]: column i spans input i's range
        phi = layer.edge_activations(grid).cpu().numpy()  # [samples, in, out]
        grid_np = grid.cpu().numpy()
        for i, j in torch.nonzero(layer.mask > 0).tolist():
            edges.append(DiagramEdge(
                index, i, j, float(alphas[index][i, j]), layer.symbolic_names.get((i, j)), grid_np[:, i], phi[:, i, j],
            ))
    return edges


def _node_x(count: int) -> np.ndarray:
    return (np.arange(count) + 0.5) / count


def _scaled(values: np.ndarray, center: float, half: float) -> np.ndarray:
    """Map ``values`` onto ``[center - half, center + half]``; a constant maps to the center."""
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12 * (abs(high) + abs(low) + 1):
        return np.full(values.shape, center)
    return center - half + 2 * half * (values - low) / (high - low)


def _box(edge: DiagramEdge, width: Sequence[int], max_half_width: float) -> tuple[float, float, float]:
    """Center (x, y) and half width (axis fraction) of an edge's box; a layer's boxes sit in one row."""
    n_out = width[edge.layer + 1]
    boxes = width[edge.layer] * n_out
    center_x = (edge.i * n_out + edge.j + 0.5) / boxes
    return center_x, edge.layer * LAYER_GAP + LAYER_GAP / 2, min(0.4 / boxes, max_half_width)


def _edge_lines(edge: DiagramEdge, width: Sequence[int], max_half_width: float) -> list[np.ndarray]:
    """Polylines of one edge: input node → box, box → output node, box outline, curve."""
    cx, cy, half_w = _box(edge, width, max_half_width)
    half_h = BOX_HALF_HEIGHT
    start = (_node_x(width[edge.layer])[edge.i], edge.layer * LAYER_GAP)
    end = (_node_x(width[edge.layer + 1])[edge.j], (edge.layer + 1) * LAYER_GAP)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]) * (half_w, half_h)
    curve = np.column_stack([_scaled(edge.x, cx, 0.85 * half_w), _scaled(edge.y, cy, 0.85 * half_h)])
    return [np.array([start, (cx, cy - half_h)]), np.array([(cx, cy + half_h), end]), corners + (cx, cy), curve]


def _check_names(names: Sequence[str] | None, count: int, what: str) -> None:
    if names is not None and len(names) != count:
        raise ValueError(f"{what} has {len(names)} names but the model has {count} {what.split('_')[0]}s")


def _label_nodes(ax: Axes, names: Sequence[str] | None, y: float, va: str) -> None:
    if names is None:
        return
    for x, name in zip(_node_x(len(names)), names):
        ax.text(x, y, name, ha="center", va=va, fontsize=9)


def plot_kan(
    model: KAN,
    x: Tensor,
    path: str | Path,
    beta: float = 3.0,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw ``model`` as the paper does (inputs at the bottom, one curve per edge) and save a PNG.

    ``x`` ``[batch, width[0]]`` gives each edge's input range and its score A (see the module
    docstring for alpha = tanh(β·A)).
    """
    width = model.width
    _check_names(input_names, width[0], "input_names")
    _check_names(output_names, width[-1], "output_names")
    edges = diagram_edges(model, x, beta)
    depth = len(width) - 1
    widest = max(max(a * b for a, b in zip(width[:-1], width[1:])), max(width))
    fig_width = float(np.clip(0.5 * widest, 4, 16))
    from matplotlib.figure import Figure  # deferred: matplotlib takes a second to import, `import kan` need not

    fig = Figure(figsize=(fig_width, float(np.clip(1.4 * depth + 1.2, 2.6, 14))))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9 if title else 0.96))
    max_half_width = MAX_BOX_HALF_WIDTH / (0.96 * fig_width)
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, depth * LAYER_GAP + 0.6)
    segments, colors = [], []
    for edge in edges:
        rgb = SYMBOLIC_COLOR if edge.symbol else NUMERIC_COLOR
        for line in _edge_lines(edge, width, max_half_width):
            segments.append(line)
            colors.append((*rgb, edge.alpha))
        if edge.symbol:
            cx, cy, half_w = _box(edge, width, max_half_width)
            ax.text(cx + half_w, cy, f" {edge.symbol}", color=SYMBOLIC_COLOR, alpha=max(edge.alpha, 0.3),
                    fontsize=7, ha="left", va="center")
    from matplotlib.collections import LineCollection  # deferred, as Figure above

    ax.add_collection(LineCollection(segments, colors=colors, linewidths=0.9))
    for level, count in enumerate(width):
        ax.scatter(_node_x(count), np.full(count, level * LAYER_GAP), s=28, color="black", zorder=3)
    _label_nodes(ax, input_names, -0.25, "top")
    _label_nodes(ax, output_names, depth * LAYER_GAP + 0.25, "bottom")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path``, in the format its suffix names (png, pdf, svg, ...); the path."""
    path = Path(path)
    formats = fig.canvas.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in formats or path.is_dir():
        raise ValueError(f"plot path {str(path)!r} must be a file name ending in one of "
                         f"{', '.join('.' + name for name in sorted(formats))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fast = {"pil_kwargs": {"compress_level": 1}} if path.suffix.lower() == ".png" else {}  # a run draws hundreds
    fig.savefig(path, dpi=150, **fast)
    return path


_METRICS = {"rmse": ("RMSE", True), "accuracy": ("accuracy", False), "loss": ("loss", True)}  # label, log axis


def _as_frame(history: Sequence[Mapping[str, float]] | pd.DataFrame) -> pd.DataFrame:
    return history.reset_index(drop=True) if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))


def _metric(frame: pd.DataFrame) -> tuple[str, bool]:
    """The metric to draw (RMSE, else accuracy, else loss) and whether its axis is logarithmic."""
    for name, (_, log) in _METRICS.items():
        columns = [f"train_{name}", f"test_{name}"]
        if all(c in frame for c in columns) and frame[columns].notna().any().any():
            return name, log
    raise ValueError("history needs train_/test_ columns of rmse, accuracy or loss")


def grid_switches(history: Sequence[Mapping[str, float]] | pd.DataFrame) -> list[tuple[float, int]]:
    """``(step, G)`` at the first recorded step of every grid phase (empty without a grid)."""
    frame = _as_frame(history)
    if "grid" not in frame or frame.empty or (frame["grid"] <= 0).all():
        return []
    starts = frame[frame["grid"] != frame["grid"].shift()]
    return [(float(s), int(g)) for s, g in zip(starts["step"], starts["grid"])]


def draw_history(ax: Axes, history: Sequence[Mapping[str, float]] | pd.DataFrame) -> None:
    """Train and test metric against step on ``ax``, grid switches as dotted lines labelled G."""
    frame = _as_frame(history)
    name, log = _metric(frame)
    for split in ("train", "test"):
        ax.plot(frame["step"], frame[f"{split}_{name}"], label=split, linewidth=1.4, linestyle="-" if split == "train" else "--")
    if log:
        from matplotlib.ticker import LogFormatter  # deferred, as in plot_kan

        ax.set_yscale("log")  # plain labels ("1e-05", minor ones on a short axis): no mathtext to lay out
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter())
    for number, (step, grid) in enumerate(grid_switches(frame)):
        if number:
            ax.axvline(step - 0.5, color="0.5", linestyle=":", linewidth=1)
        ax.text(step - 0.5, 1.0, f"G={grid}", transform=ax.get_xaxis_transform(), fontsize=7, va="bottom")
    ax.set_xlabel("step")
    ax.set_ylabel(_METRICS[name][0])
    ax.legend(loc="best", fontsize=8)


_HISTORY_MARGINS = {"left": 0.14, "right": 0.97, "bottom": 0.12, "top": 0.87}  # fixed: constrained layout is slow


def plot_history(history: Sequence[Mapping[str, float]] | pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """Training curves of one run (a ``fit`` history or a history frame) as a PNG."""
    from matplotlib.figure import Figure  # deferred, as in plot_kan

    fig = Figure(figsize=(6, 4))
    fig.subplots_adjust(**_HISTORY_MARGINS)
    ax = fig.add_subplot()
    draw_history(ax, history)
    if title:
        ax.set_title(title, pad=14)
    return _save(fig, path)
