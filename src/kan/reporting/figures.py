"""Report figures from the runs table: Pareto frontiers, scaling laws, grid-extension staircases.

Each function writes PNGs into ``out_dir`` and returns their paths; experiments or datasets
without runs are skipped, and runs whose status is not "ok" are left out (and logged).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FuncFormatter, LogFormatterSciNotation, LogLocator, MaxNLocator, NullFormatter, ScalarFormatter,
)

from kan.plot import draw_history
from kan.reporting.analysis import frontier_exponent, pareto_front
from kan.reporting.runs import Table, load_histories, load_runs, usable_runs
from kan.reporting.summaries import grid_curves, input_dim

log = logging.getLogger(__name__)

PALETTE = {"KAN unpruned": "tab:blue", "KAN pruned": "tab:green", "KAN human": "tab:purple", "MLP": "tab:red"}
THEORY_EXPONENT = 4.0  # k + 1 for cubic splines


def _usable(runs: Table) -> pd.DataFrame:
    usable, excluded = usable_runs(load_runs(runs))
    if excluded:
        log.info("left out %d run(s) whose status is not 'ok'", excluded)
    return usable


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _labelled(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs with a ``label`` column: "MLP" or "KAN <variant>"."""
    labels = np.where(runs["model"] == "mlp", "MLP", "KAN " + runs["variant"])
    return runs.assign(label=labels)


def _figure(size: tuple[float, float] = (6, 4.5)) -> tuple[Figure, Axes]:
    with sns.axes_style("whitegrid"):
        fig = Figure(figsize=size, layout="constrained")
        return fig, fig.add_subplot()


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path


def _fronts(ax: Axes, frame: pd.DataFrame, x: str = "n_params", y: str = "test_rmse") -> None:
    """Every run as a point, and each label's Pareto frontier as a step line (log-log)."""
    frame = frame.dropna(subset=[x, y])
    palette = {label: PALETTE.get(label, "tab:gray") for label in frame["label"].unique()}
    sns.scatterplot(data=frame, x=x, y=y, hue="label", style="label", palette=palette, alpha=0.55, ax=ax)
    for label, group in frame.groupby("label"):
        front = pareto_front(group, x, y)
        ax.plot(front[x], front[y], drawstyle="steps-post", color=palette[label], linewidth=1.5)
    ax.set(xscale="log", yscale="log")
    readable_log_ticks(ax)


def readable_log_ticks(ax: Axes) -> None:
    """Readable labels on both log axes, never at minor ticks: powers of 10 over two decades or
    more, 1, 2 and 5 × 10^k over one to two, a few plain numbers within one decade (where
    matplotlib labels every minor tick, e.g. "3×10¹4×10¹", and the labels run into each other)."""
    ax.autoscale_view()
    for axis in (ax.xaxis, ax.yaxis):
        low, high = sorted(axis.get_view_interval())
        decades = np.log10(high / low)
        if decades >= 2:
            axis.set_major_locator(LogLocator(base=10))
            axis.set_major_formatter(LogFormatterSciNotation(base=10))
        else:
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)) if decades >= 1 else MaxNLocator(nbins=4))
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())


def _reference_lines(ax: Axes, x0: float, x1: float, y0: float, exponents: Mapping[str, float]) -> None:
    """Lines ``y0 · (x / x0)^-α`` from x0 to x1, one per labelled α."""
    span = np.array([x0, x1], dtype=float)
    for (label, alpha), style in zip(exponents.items(), ("--", ":", "-.")):
        ax.plot(span, y0 * (span / span[0]) ** -alpha, linestyle=style, color="0.35", linewidth=1, label=label)


def pareto_frontiers(runs: Table, out_dir: str | Path) -> list[Path]:
    """Per dataset of the special and Feynman experiments: test RMSE vs parameters, with fronts."""
    usable = _labelled(_usable(runs))
    paths = []
    for (experiment, dataset), group in usable[usable["experiment"].isin(["special", "feynman"])].groupby(
        ["experiment", "dataset"]
    ):
        fig, ax = _figure()
        _fronts(ax, group)
        ax.set(xlabel="number of parameters", ylabel="test RMSE", title=f"{experiment}: {dataset}")
        ax.legend(title=None, fontsize=8)
        paths.append(_save(fig, Path(out_dir) / f"pareto_{experiment}_{_slug(dataset)}.png"))
    return paths


def scaling_plot(runs: Table, out_dir: str | Path) -> list[Path]:
    """Per toy function: test RMSE vs parameters for KANs and MLPs, with the N^-4 and N^-4/d lines."""
    usable = _labelled(_usable(runs))
    paths = []
    for dataset, group in usable[usable["experiment"] == "toy_scaling"].groupby("dataset"):
        fig, ax = _figure()
        _fronts(ax, group)
        kan = pareto_front(group[group["model"] == "kan"])
        d = input_dim(group)
        if not kan.empty:
            lines = {"$N^{-4}$": THEORY_EXPONENT}
            if d > 1:
                lines[f"$N^{{-4/{d}}}$"] = THEORY_EXPONENT / d
            start = kan.iloc[0]
            _reference_lines(ax, start["n_params"], group["n_params"].max(), 1.5 * start["test_rmse"], lines)
        exponents = {model.upper(): frontier_exponent(group[group["model"] == model])[0] for model in ("kan", "mlp")}
        fitted = ", ".join(f"{model} α={alpha:.2f}" for model, alpha in exponents.items() if np.isfinite(alpha))
        ax.set(xlabel="number of parameters N", ylabel="test RMSE", title=f"{dataset} (d={d}); fitted {fitted}")
        ax.legend(title=None, fontsize=8)
        paths.append(_save(fig, Path(out_dir) / f"scaling_{_slug(dataset)}.png"))
    return paths


def _longest_run(group: pd.DataFrame) -> pd.Series:
    """The run of the lowest seed that went through the most steps (all grid phases)."""
    seed = group[group["seed"] == group["seed"].min()]
    return seed.loc[seed["steps"].idxmax()]


def _rmse_vs_grid(curves: pd.DataFrame, dataset: str, out_dir: Path) -> Path:
    long = curves.melt(id_vars=["shape", "grid"], value_vars=["train_rmse", "test_rmse"], var_name="split",
                       value_name="rmse")
    long["split"] = long["split"].str.removesuffix("_rmse")
    fig, ax = _figure()
    sns.lineplot(data=long, x="grid", y="rmse", hue="shape", style="split", markers=True, ax=ax)
    first = curves[curves["grid"] == curves["grid"].min()]
    lines = {"$G^{-3}$": 3.0, "$G^{-4}$": 4.0}
    _reference_lines(ax, curves["grid"].min(), curves["grid"].max(), float(first["test_rmse"].max()), lines)
    ax.set(xscale="log", yscale="log", xlabel="grid size G", ylabel="RMSE (median over seeds)",
           title=f"{dataset}: RMSE after each grid phase")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(sorted(curves["grid"].unique()))
    ax.legend(fontsize=8)
    return _save(fig, out_dir / f"grid_rmse_{_slug(dataset)}.png")


def staircase(runs: Table, histories: Table, out_dir: str | Path) -> list[Path]:
    """Grid extension: train/test RMSE vs step across grid switches per (dataset, shape), and the
    RMSE after each grid phase vs G with G^-3 and G^-4 lines per dataset."""
    out_dir = Path(out_dir)
    usable = _usable(runs)
    runs_grid = usable[(usable["experiment"] == "grid_extension") & usable["variant"].isin(["unpruned", "human"])]
    if runs_grid.empty:
        return []
    history = load_histories(histories)
    paths = []
    for (dataset, shape), group in runs_grid.groupby(["dataset", "initial_shape"]):
        run = _longest_run(group)
        steps = history[history["run_id"] == run["run_id"]].sort_values("step")
        if steps.empty:
            log.info("no history for run %s (%s %s), staircase skipped", run["run_id"], dataset, shape)
            continue
        fig, ax = _figure((7, 4.5))
        draw_history(ax, steps)
        ax.set_title(f"{dataset} {shape}: grid extension (seed {run['seed']})", pad=14)
        paths.append(_save(fig, out_dir / f"staircase_{_slug(dataset)}_{_slug(shape)}.png"))
    for dataset, curves in grid_curves(usable).groupby("dataset"):
        paths.append(_rmse_vs_grid(curves, dataset, out_dir))
    return paths
