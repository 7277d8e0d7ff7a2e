"""The paper's tables regenerated from our runs: one Markdown and one CSV file per table; the
science experiments' own tables copied next to them."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import pandas as pd

from kan.records.markdown import Format, fixed, markdown_table, sci
from kan.records.science_outputs import TABLES
from kan.reporting.runs import Table, load_runs, usable_runs
from kan.reporting.summaries import (
    MIN_KAN_RMSE, feynman_summary, grid_summary, scaling_summary, special_summary,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _TableSpec:
    title: str
    summary: Callable[[pd.DataFrame], pd.DataFrame]
    note: str


_TABLES: Mapping[str, _TableSpec] = {
    "special_functions": _TableSpec(
        "Special functions (paper §3.2)", special_summary,
        f"min KAN: the smallest pruned shape (fewest edges, then hidden nodes) whose best run has test "
        f"RMSE < {MIN_KAN_RMSE:g}; best KAN: the lowest test RMSE of a pruned KAN run (the paper's best "
        "shapes are all pruned ones); MLP: the best MLP run; any KAN: the lowest test RMSE of any KAN "
        "run, pruned or not (not in the paper's table). Best over seeds, depths, λ and grid phases.",
    ),
    "feynman": _TableSpec(
        "Feynman equations (paper §3.3)", feynman_summary,
        f"human: the paper's hand-made shape; min pruned: the smallest pruned shape with test RMSE < "
        f"{MIN_KAN_RMSE:g}; best pruned / unpruned / MLP: the lowest test RMSE of that family. Best over "
        "seeds, depths, λ, activations and grid phases.",
    ),
    "toy_scaling": _TableSpec(
        "Scaling on toy functions (paper §3.1)", scaling_summary,
        "exponent α of test RMSE ∝ N^-α (N = parameters), least squares in log-log space on the "
        "Pareto front of each model family; points = size of that front. Theory for KANs: α = 4.",
    ),
    "grid_extension": _TableSpec(
        "Grid extension (paper §2.4)", grid_summary,
        "median test RMSE over seeds per grid size G (unpruned training only); best grid: the G "
        "with the lowest test RMSE; exponent α of test RMSE ∝ G^-α on the Pareto front of (G, RMSE).",
    ),
}

_FORMATS: Mapping[str, Format] = {"kan_exponent": fixed, "mlp_exponent": fixed, "test_rmse_exponent": fixed}


def _formats(columns: list[str]) -> dict[str, Format]:
    return {c: _FORMATS.get(c, sci) for c in columns if c.endswith("_rmse") or c in _FORMATS}


def write_tables(runs: Table, out_dir: str | Path) -> list[Path]:
    """Write ``<table>.md`` and ``<table>.csv`` for every table that has runs; returns the paths.

    Runs with a status other than "ok" are left out and counted in each table's note;
    experiments without runs produce no table.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    usable, excluded = usable_runs(load_runs(runs))
    written = []
    for name, spec in _TABLES.items():
        summary = spec.summary(usable)
        if summary.empty:
            log.info("table %s: no runs, skipped", name)
            continue
        csv_path, md_path = out_dir / f"{name}.csv", out_dir / f"{name}.md"
        summary.to_csv(csv_path, index=False)
        body = markdown_table(summary, _formats(list(summary.columns)))
        excluded_note = f" {excluded} run(s) with a status other than \"ok\" are left out of all tables." if excluded else ""
        md_path.write_text(f"# {spec.title}\n\n{spec.note}{excluded_note}\n\n{body}", encoding="utf-8")
        written += [md_path, csv_path]
    return written


def copy_science_tables(result_dirs: Iterable[str | Path], out_dir: str | Path) -> list[Path]:
    """Copy each science experiment's ``tables/*.{md,csv}`` to ``<out_dir>/science/<experiment>/``."""
    written = []
    for result in map(Path, result_dirs):
        target = Path(out_dir) / "science" / result.name
        target.mkdir(parents=True, exist_ok=True)
        for table in sorted((result / TABLES).glob("*.*")):
            written.append(Path(shutil.copy2(table, target / table.name)))
    return written
