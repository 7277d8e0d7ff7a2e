"""Our numbers next to the paper's: structured comparisons and ``reports/paper_vs_ours.md``.

A paper cell has a counterpart when our summary of the same block (see
:mod:`kan.reporting.summaries`) has a value in the column of the same name for the same
dataset (and shape). Numbers match when ``ours / paper`` lies within ``[1/f, f]`` for the
block's tolerance factor f; shapes are reported as same or different and never count as
mismatches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

from kan.reporting.markdown import is_missing, markdown_table, sci
from kan.reporting.reference import FLAG_LISTS, Reference, load_reference
from kan.reporting.runs import Table, format_shape, load_runs, usable_runs
from kan.reporting.science import science_report
from kan.reporting.summaries import feynman_summary, grid_summary, scaling_summary, special_summary

FLAG = "⚑"


@dataclass(frozen=True)
class _Block:
    title: str
    experiment: str
    summary: Callable[[pd.DataFrame], pd.DataFrame]
    keys: tuple[str, ...]


COMPARED_BLOCKS: Mapping[str, _Block] = {
    "special_functions": _Block("Special functions", "special", special_summary, ("dataset",)),
    "feynman": _Block("Feynman equations", "feynman", feynman_summary, ("dataset",)),
    "toy_scaling": _Block("Scaling on toy functions", "toy_scaling", scaling_summary, ("dataset",)),
    "grid_extension": _Block("Grid extension", "grid_extension", grid_summary, ("dataset", "shape")),
}


@dataclass(frozen=True)
class Comparison:
    """One paper cell next to ours. ``paper``/``ours`` are numbers, or shapes as ``"[2,2,1]"``."""

    experiment: str
    dataset: str
    quantity: str
    paper: float | str
    ours: float | str
    tolerance_factor: float
    uncertain: bool = False  # ⚑: the paper's copies disagree on this cell
    approximate: bool = False  # the paper states the value only roughly

    @property
    def is_shape(self) -> bool:
        return isinstance(self.paper, str)

    @property
    def ratio(self) -> float | None:
        """ours / paper for numbers, None for shapes."""
        return None if self.is_shape else float(self.ours) / float(self.paper)

    @property
    def within_tolerance(self) -> bool:
        """Shapes: equal. Numbers: ours / paper within ``[1/f, f]``."""
        if self.is_shape:
            return self.paper == self.ours
        return 1 / self.tolerance_factor <= self.ratio <= self.tolerance_factor


# A comparison outside its tolerance, as compare_to_paper returns them.
Mismatch = Comparison


def _as_reference(reference: Reference | str | Path) -> Reference:
    return reference if isinstance(reference, dict) else load_reference(reference)


def _key_text(value: object) -> str:
    return format_shape(value) if isinstance(value, list) else str(value)


def _row_comparisons(
    block: _Block, row: Mapping, ours: pd.Series, factor: float,
) -> list[Comparison]:
    extra = " ".join(_key_text(row[k]) for k in block.keys[1:])
    found = []
    for column, paper in row.items():
        if column in block.keys or column in FLAG_LISTS or column not in ours.index or is_missing(ours[column]):
            continue
        is_shape = isinstance(paper, list)
        found.append(Comparison(
            experiment=block.experiment, dataset=str(row["dataset"]),
            quantity=f"{column} for {extra}" if extra else column,
            paper=format_shape(paper) if is_shape else float(paper),
            ours=str(ours[column]) if is_shape else float(ours[column]),
            tolerance_factor=factor,
            uncertain=column in row.get("uncertain", ()), approximate=column in row.get("approximate", ()),
        ))
    return found


def _block_comparisons(
    name: str, block: _Block, runs: pd.DataFrame, reference: Reference, tolerance_factor: float | None,
) -> tuple[list[Comparison], list[str]]:
    """Comparisons of one reference block, and the paper rows that have no runs."""
    summary = block.summary(runs)
    ours = {tuple(str(v) for v in row[list(block.keys)]): row for _, row in summary.iterrows()}
    factor = tolerance_factor or float(reference[name]["tolerance_factor"])
    found, absent = [], []
    for row in reference[name]["rows"]:
        key = tuple(_key_text(row[k]) for k in block.keys)
        if key in ours:
            found += _row_comparisons(block, row, ours[key], factor)
        else:
            absent.append(" ".join(key))
    return found, absent


def comparisons(
    runs: Table, reference: Reference | str | Path, tolerance_factor: float | None = None,
) -> list[Comparison]:
    """Every paper cell with a counterpart in our usable runs (status "ok").

    ``tolerance_factor`` overrides the per-block factors of the reference.
    """
    usable, _ = usable_runs(load_runs(runs))
    reference = _as_reference(reference)
    return [
        c for name, block in COMPARED_BLOCKS.items()
        for c in _block_comparisons(name, block, usable, reference, tolerance_factor)[0]
    ]


def compare_to_paper(
    runs: Table, reference: Reference | str | Path, tolerance_factor: float | None = None,
) -> list[Mismatch]:
    """The numeric comparisons whose ratio ours/paper lies outside the tolerance (shapes excluded)."""
    return [c for c in comparisons(runs, reference, tolerance_factor) if not c.is_shape and not c.within_tolerance]


def _value_text(value: float | str, quantity: str) -> str:
    if isinstance(value, str):
        return value
    return sci(value) if quantity.split(" ")[0].endswith("_rmse") else f"{value:.3g}"


def _verdict(c: Comparison) -> str:
    if c.is_shape:
        return "same shape" if c.within_tolerance else "different shape"
    return "within tolerance" if c.within_tolerance else f"outside ×{c.tolerance_factor:g}"


def _comparison_table(found: Sequence[Comparison]) -> str:
    frame = pd.DataFrame({
        "dataset": [c.dataset for c in found],
        "quantity": [c.quantity for c in found],
        "paper": [("≈" if c.approximate else "") + _value_text(c.paper, c.quantity) for c in found],
        "ours": [_value_text(c.ours, c.quantity) for c in found],
        "ours/paper": ["—" if c.is_shape else f"{c.ratio:.3g}" for c in found],
        FLAG: [FLAG if c.uncertain else "" for c in found],
        "verdict": [_verdict(c) for c in found],
    })
    return markdown_table(frame, {column: str for column in frame.columns})


def _statement(c: Comparison) -> str:
    direction = f"{c.ratio:.3g}× the paper's" if c.ratio >= 1 else f"1/{1 / c.ratio:.3g} of the paper's"
    flag = f" (paper cell {FLAG}: uncertain)" if c.uncertain else ""
    return (
        f"- {c.dataset}, {c.quantity}: ours {_value_text(c.ours, c.quantity)} is {direction} "
        f"{_value_text(c.paper, c.quantity)}, beyond the tolerance ×{c.tolerance_factor:g}{flag}."
    )


def _block_section(name: str, block: _Block, found: list[Comparison], absent: list[str], reference: Reference) -> str:
    lines = [f"## {block.title}", "", f"Paper: {reference[name]['source']}.", ""]
    if found:
        lines.append(_comparison_table(found))
        outside = [c for c in found if not c.is_shape and not c.within_tolerance]
        if outside:
            lines += ["Where ours differs from the paper by more than the tolerance:", ""]
            lines += [_statement(c) for c in outside]
        else:
            lines.append("Every number is within the tolerance.")
        lines.append("")
    if absent:
        lines += [f"No runs for {len(absent)} of {len(reference[name]['rows'])} paper rows: {', '.join(absent)}.", ""]
    return "\n".join(lines)


def paper_vs_ours(
    runs: Table, reference_yaml: str | Path, deviations: Sequence[str], out_path: str | Path,
    science: pd.DataFrame | str | Path | None = None,
) -> Path:
    """Write the paper-vs-ours report (Markdown) to ``out_path`` and return the path; ``science``
    (science.csv, see :mod:`kan.reporting.science`) adds the science experiments."""
    reference = load_reference(reference_yaml)
    extra = science_report(science if science is not None else pd.DataFrame(columns=["experiment", "metric", "value"]),
                           reference)
    usable, excluded = usable_runs(load_runs(runs))
    sections, every = [], []
    for name, block in COMPARED_BLOCKS.items():
        found, absent = _block_comparisons(name, block, usable, reference, None)
        every += found
        sections.append(_block_section(name, block, found, absent, reference))
    numbers = [c for c in every if not c.is_shape]
    outside = [c for c in numbers if not c.within_tolerance]
    header = [
        "# Paper vs ours", "",
        f"The numbers of \"{reference['paper']['title']}\" (arXiv {reference['paper']['arxiv']}, transcribed in "
        f"`{Path(reference_yaml).as_posix()}`) next to ours, from {len(usable)} runs with status \"ok\""
        f" ({excluded} other run(s) left out).", "",
        f"- ours/paper: the ratio of our value to the paper's; a number is within tolerance when the ratio lies "
        f"in [1/f, f] for the block's factor f. ≈: the paper states the value only roughly. "
        f"{FLAG}: the copies of the paper disagree on this cell, so the paper value is uncertain.",
        f"- {len(numbers)} numbers compared: {len(numbers) - len(outside)} within tolerance, {len(outside)} outside "
        f"({sum(c.uncertain for c in outside)} of those on {FLAG} cells); "
        f"{sum(c.is_shape and c.within_tolerance for c in every)} of {len(every) - len(numbers)} shapes the same.",
        *([f"- science experiments: accuracies are compared by their difference (ours − paper, in percentage "
           f"points) within the block's tolerance, claims of the paper as bounds on our numbers.", extra.tally()]
          if extra.sections else []), "",
    ]
    covered = {*COMPARED_BLOCKS, *extra.blocks}
    others = [f"- {name}: {reference[name]['source']}" for name in reference if name != "paper" and name not in covered]
    sections += extra.sections
    footer = ["## Paper results without a counterpart in our runs yet", "", *others, "", "## Deviations", ""]
    footer += [f"- {d}" for d in deviations] or ["None recorded."]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(header + sections + footer) + "\n", encoding="utf-8")
    return out_path
