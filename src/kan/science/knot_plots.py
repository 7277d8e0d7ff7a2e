"""Figures of the knot study (:mod:`kan.science.knots`): feature importance and accuracies vs the paper."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def plot_importance(importance: pd.DataFrame, path: str | Path) -> Path:
    """Horizontal bars of the KAN's relative first-layer scores, most important input on top."""
    from matplotlib.figure import Figure  # deferred: the workflow's other jobs import this module without drawing

    figure = Figure(figsize=(6, 0.3 * len(importance) + 1.2), layout="constrained")
    ax = figure.subplots()
    ordered = importance.sort_values("relative")
    ax.barh(ordered["name"], ordered["relative"], color="tab:blue")
    ax.set(xlabel="relative importance (first-layer edge score)", title="Knot signature: which invariants the KAN uses")
    return _save(figure, path)


def plot_accuracies(models: pd.DataFrame, path: str | Path) -> Path:
    """Test accuracy of each model next to the paper's value (where the paper gives one)."""
    frame = models[models["test_accuracy"].notna()].reset_index(drop=True)
    from matplotlib.figure import Figure  # deferred, as above

    figure = Figure(figsize=(1.1 * len(frame) + 2, 4), layout="constrained")
    ax = figure.subplots()
    x = np.arange(len(frame))
    ax.bar(x - 0.2, frame["test_accuracy"], width=0.4, label="ours")
    paper = pd.to_numeric(frame.get("paper_accuracy", pd.Series(np.nan, index=frame.index)), errors="coerce")
    ax.bar(x + 0.2, paper, width=0.4, label="paper")
    ax.set_xticks(x, frame["model"], rotation=30, ha="right")
    ax.set(ylabel="test accuracy", ylim=(0, 1), title="Knot signature: test accuracy")
    ax.legend()
    return _save(figure, path)
