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

from kan.records.markdown import is_missing, markdown_table, sci
from kan.reporting.fidelity import Causes, Tally, cause_key, ratio_text, strict_tolerance, within_band
from kan.reporting.reference import FLAG_LISTS, NOT_COMPARED, Reference, load_reference
from kan.reporting.runs import Table, format_shape, left_out, load_runs, usable_runs
from kan.reporting.science import PIPELINE_OUTPUTS, ClaimCheck, ScienceReport, claim_keys, claim_statements, science_report
from kan.reporting.science import cause_keys as science_cause_keys
from kan.reporting.summaries import feynman_summary, grid_summary, scaling_summary, special_summary
from kan.reporting.table_claims import claim_context, table_claims

FLAG = "⚑"
DIVERGED_NOTE = ("A diverged run is the grid phase in which a training's loss became non-finite or ran away "
                 "(`kan.phases`): the training ends there, and its earlier phases are compared as usual.")


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
    sided: bool = True  # False: a minimal shape's RMSE where our minimal shape is not the paper's

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
        return within_band(float(self.ours), float(self.paper), False, self.tolerance_factor)

    @property
    def within_strict(self) -> bool:
        """Numbers: ours / paper within the stricter band of :mod:`kan.reporting.fidelity`."""
        return not self.is_shape and within_band(float(self.ours), float(self.paper), False,
                                                 strict_tolerance(False, self.tolerance_factor))


# A comparison outside its tolerance, as compare_to_paper returns them.
Mismatch = Comparison


def _as_reference(reference: Reference | str | Path) -> Reference:
    return reference if isinstance(reference, dict) else load_reference(reference)


def _key_text(value: object) -> str:
    return format_shape(value) if isinstance(value, list) else str(value)


REPORTED = ("_rmse", "_exponent", "_shape", "_grid", "_threshold", "accuracy")  # row cells that are results
NO_QUALIFYING_RUN = ("no run of ours qualifies: none of this kind, or, for a minimal shape, no pruned KAN "
                     "reached test RMSE < 1e-2")


def unmatched_cells(block: _Block, row: Mapping, ours: pd.Series | None) -> list[str]:
    """``dataset quantity: reason`` of every reported cell of ``row`` without a number of ours;
    the reason comes from the row's ``not_compared`` mapping (cell -> reason)."""
    reasons = dict(row.get(NOT_COMPARED, {}))
    if ours is not None:  # a column we summarise but left empty: no run of ours qualified
        reasons.update({column: NO_QUALIFYING_RUN for column in ours.index if is_missing(ours[column])})
    keys = " ".join(_key_text(row[k]) for k in block.keys)
    return [
        f"{keys} {column}: {reasons.get(column, 'no reason recorded')}"
        for column in row if column.endswith(REPORTED) and column not in block.keys
        and (ours is None or column not in ours.index or is_missing(ours[column]) or column in row.get(NOT_COMPARED, {}))
    ]


def _quantity(block: _Block, row: Mapping, column: str) -> str:
    """A row cell's quantity as the report (and ``report.miss_causes``) names it: the column, with the
    row's further keys (e.g. the grid-extension shape) after "for"."""
    extra = " ".join(_key_text(row[k]) for k in block.keys[1:])
    return f"{column} for {extra}" if extra else column


def _same_minimal_shape(row: Mapping, ours: pd.Series, column: str) -> bool:
    """False for a minimal shape's RMSE (``min_*_rmse``) whose shape differs between the paper and
    ours: the two RMSEs are then of different models. True for every other cell."""
    shape = column.removesuffix("_rmse") + "_shape"
    if not (column.startswith("min_") and shape in row and shape in ours.index) or is_missing(ours[shape]):
        return True
    return format_shape(row[shape]) == str(ours[shape])


def _row_comparisons(
    block: _Block, row: Mapping, ours: pd.Series, factor: float,
) -> list[Comparison]:
    found = []
    for column, paper in row.items():
        if (column in block.keys or column in (*FLAG_LISTS, NOT_COMPARED) or column in row.get(NOT_COMPARED, {})
                or column not in ours.index or is_missing(ours[column])):
            continue
        is_shape = isinstance(paper, list)
        found.append(Comparison(
            experiment=block.experiment, dataset=str(row["dataset"]),
            quantity=_quantity(block, row, column),
            paper=format_shape(paper) if is_shape else float(paper),
            ours=str(ours[column]) if is_shape else float(ours[column]),
            tolerance_factor=factor,
            uncertain=column in row.get("uncertain", ()), approximate=column in row.get("approximate", ()),
            sided=_same_minimal_shape(row, ours, column),
        ))
    return found


def cause_keys(reference: Reference) -> set[str]:
    """The ``report.miss_causes`` key (:func:`kan.reporting.fidelity.cause_key`) of every number the
    report can compare: table cells (``block/dataset/quantity``) and science numbers."""
    keys = set(science_cause_keys(reference)) | claim_keys(reference, COMPARED_BLOCKS)
    for name, block in COMPARED_BLOCKS.items():
        for row in reference[name]["rows"]:
            keys |= {cause_key(name, str(row["dataset"]), _quantity(block, row, column))
                     for column in row if column.endswith(REPORTED) and column not in block.keys}
    return keys


def check_causes(causes: Causes, reference: Reference) -> None:
    """Raise ValueError naming every curated cause whose key matches no number of ``reference``
    (a mistyped key would otherwise fall back to a generic cause without a word)."""
    unknown = sorted(set(causes.curated) - cause_keys(reference))
    if unknown:
        raise ValueError(f"report.miss_causes: {len(unknown)} key(s) match no number of the paper: "
                         f"{', '.join(repr(k) for k in unknown)}; a key is block/dataset/quantity as the report "
                         "names them, e.g. 'feynman/II.38.3/human_rmse' or 'knot/KAN: test_accuracy'")


def _block_comparisons(
    name: str, block: _Block, summary: pd.DataFrame, reference: Reference, tolerance_factor: float | None,
) -> tuple[list[Comparison], list[str], list[str]]:
    """Comparisons of one reference block with our ``summary`` of it, the paper rows that have no
    runs, and the reported cells of rows with runs that have no counterpart (see :func:`unmatched_cells`)."""
    ours = {tuple(str(v) for v in row[list(block.keys)]): row for _, row in summary.iterrows()}
    factor = tolerance_factor or float(reference[name]["tolerance_factor"])
    found, absent, unmatched = [], [], []
    for row in reference[name]["rows"]:
        key = tuple(_key_text(row[k]) for k in block.keys)
        if key in ours:
            found += _row_comparisons(block, row, ours[key], factor)
            unmatched += unmatched_cells(block, row, ours[key])
        else:
            absent.append(" ".join(key))
    return found, absent, unmatched


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
        for c in _block_comparisons(name, block, block.summary(usable), reference, tolerance_factor)[0]
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
        "ours/paper": ["—" if c.is_shape else ratio_text(c.ratio, c.tolerance_factor, c.within_tolerance)
                       for c in found],
        FLAG: [FLAG if c.uncertain else "" for c in found],
        "verdict": [_verdict(c) for c in found],
    })
    return markdown_table(frame, {column: str for column in frame.columns})


def _statement(c: Comparison, cause: str) -> str:
    if c.ratio >= 1 or c.ratio == 0:
        direction = f"{ratio_text(c.ratio, c.tolerance_factor, c.within_tolerance)}× the paper's"
    else:
        direction = f"1/{ratio_text(1 / c.ratio, c.tolerance_factor, c.within_tolerance)} of the paper's"
    flag = f" (paper cell {FLAG}: uncertain)" if c.uncertain else ""
    return (
        f"- {c.dataset}, {c.quantity}: ours {_value_text(c.ours, c.quantity)} is {direction} "
        f"{_value_text(c.paper, c.quantity)}, beyond the tolerance ×{c.tolerance_factor:g}{flag}. Likely cause: {cause}."
    )


def _claims_part(name: str, checks: Sequence[ClaimCheck], unchecked: Sequence[str], context: Sequence[str],
                 causes: Causes) -> list[str]:
    """A table block's claims: the checked ones as a table, those that do not hold spelled out with
    their likely cause, the ``context`` lines, and those not checked with the reason."""
    lines = []
    if checks:
        rows = [c.row() for c in checks]
        lines += ["The paper's claims, checked as bounds on our numbers:", "",
                  markdown_table(pd.DataFrame(rows), {column: str for column in rows[0]})]
        lines += claim_statements(name, checks, causes)
        lines += [""] if any(not c.holds for c in checks) else []
        lines += list(context)
    if unchecked:
        lines += ["Claims not checked, and why:", "", *[f"- {item}" for item in unchecked], ""]
    return lines


def _block_section(name: str, block: _Block, found: list[Comparison], absent: list[str], unmatched: list[str],
                   claims: tuple[list[ClaimCheck], list[str], list[str]], reference: Reference, causes: Causes,
                   pending: Mapping[str, str]) -> str:
    lines = [f"## {block.title}", "", f"Paper: {reference[name]['source']}.", ""]
    if found:
        numbers = [c for c in found if not c.is_shape]
        lines += [f"Fidelity: {Tally.of(numbers).text()}.", "", _comparison_table(found)]
        outside = [c for c in numbers if not c.within_tolerance]
        if outside:
            lines += ["Where ours differs from the paper by more than the tolerance:", ""]
            lines += [_statement(c, causes.explain(c, cause_key(name, c.dataset, c.quantity))) for c in outside]
        else:
            lines.append("Every number is within the tolerance.")
        lines.append("")
    lines += _claims_part(name, *claims, causes)
    if unmatched:
        lines += ["Paper numbers not compared, and why:", "", *[f"- {item}" for item in unmatched], ""]
    waiting = [f"{row} ({pending[row]})" for row in absent if row in pending]
    if waiting:
        lines += [f"Not compared yet, their trainings not all in: {', '.join(waiting)}.", ""]
    absent = [row for row in absent if row not in pending]
    if absent:
        lines += [f"No runs for {len(absent)} of {len(reference[name]['rows'])} paper rows: {', '.join(absent)}.", ""]
    return "\n".join(lines)


def _claim_count(checks: Sequence[ClaimCheck]) -> tuple[int, int]:
    """(claims that hold, claims checked)."""
    return sum(c.holds for c in checks), len(checks)


def _summed(pairs: Mapping[str, tuple[int, int]]) -> tuple[int, int]:
    """Both members of ``(count, out of)`` pairs summed over the blocks."""
    return sum(p[0] for p in pairs.values()), sum(p[1] for p in pairs.values())


def _fidelity_table(blocks: Mapping[str, tuple[str, Tally]], shapes: Mapping[str, tuple[int, int]],
                    claims: Mapping[str, tuple[int, int]], top: Headline) -> str:
    """One row per block, then the sums (``top``): compared, within tolerance, within the strict band,
    outside the tolerance with ours better, shapes that match and claims that hold (``(matching,
    checked)`` pairs per block)."""
    def pair(counts: tuple[int, int] | None) -> str:
        return f"{counts[0]} of {counts[1]}" if counts and counts[1] else "—"

    def row(title: str, tally: Tally, shape: tuple[int, int] | None, claim: tuple[int, int] | None) -> dict[str, str]:
        return {"block": title, "compared": str(tally.compared), "within tolerance": str(tally.within_tolerance),
                "within ×3 / ±2 pts": str(tally.within_strict), "outside, ours better": str(tally.outside_better),
                "same shape": pair(shape), "claims hold": pair(claim)}

    rows = [row(title, tally, shapes.get(name), claims.get(name)) for name, (title, tally) in blocks.items()]
    rows.append(row("**all**", top.fidelity, top.same_shapes, top.claims))
    frame = pd.DataFrame(rows)
    return markdown_table(frame, {column: str for column in frame.columns})


@dataclass(frozen=True)
class _JudgedBlock:
    """One table block of the paper judged against our summary of it."""

    name: str
    block: _Block
    summary: pd.DataFrame
    found: list[Comparison]
    absent: list[str]
    unmatched: list[str]
    claims: tuple[list[ClaimCheck], list[str]]  # checked, not checkable (:func:`table_claims`)


def _judge(usable: pd.DataFrame, reference: Reference,
           science: pd.DataFrame | str | Path | None) -> tuple[list[_JudgedBlock], ScienceReport]:
    """Every table block judged on the ``usable`` runs, and the science part."""
    judged = []
    for name, block in COMPARED_BLOCKS.items():
        summary = block.summary(usable)
        found, absent, unmatched = _block_comparisons(name, block, summary, reference, None)
        judged.append(_JudgedBlock(name, block, summary, found, absent, unmatched,
                                   table_claims(name, reference[name], summary, block.keys)))
    empty = pd.DataFrame(columns=["experiment", "metric", "value"])
    return judged, science_report(science if science is not None else empty, reference)


Pairs = dict[str, tuple[int, int]]


def _counts(judged: Sequence[_JudgedBlock], extra: ScienceReport) -> tuple[dict[str, tuple[str, Tally]], Pairs, Pairs]:
    """Per block: (title, tally of its numbers), (shapes the same, shapes compared) and (claims that
    hold, claims checked)."""
    tallies, shapes, claims = {}, {}, {}
    for j in judged:
        tallies[j.name] = (j.block.title, Tally.of([c for c in j.found if not c.is_shape]))
        shaped = [c for c in j.found if c.is_shape]
        shapes[j.name] = (sum(c.within_tolerance for c in shaped), len(shaped))
        claims[j.name] = _claim_count(j.claims[0])
    for block in extra.blocks:
        tallies[block.name] = (f"Science: {block.title}", Tally.of(block.numbers))
        claims[block.name] = _claim_count(block.checks)
    return tallies, shapes, claims


@dataclass(frozen=True)
class Headline:
    """The report's top line: every compared number's tally, and the shapes and claims over all blocks."""

    fidelity: Tally
    same_shapes: tuple[int, int]  # (the same as the paper's, compared)
    claims: tuple[int, int]  # (hold, checked)


def _headline(tallies: Mapping[str, tuple[str, Tally]], shapes: Pairs, claims: Pairs) -> Headline:
    """The sums over the blocks of :func:`_counts`."""
    return Headline(sum((t for _, t in tallies.values()), Tally()), _summed(shapes), _summed(claims))


def headline(runs: Table, reference_yaml: str | Path, science: pd.DataFrame | str | Path | None = None) -> Headline:
    """The numbers :func:`paper_vs_ours` puts at the top of its report, without writing it."""
    judged, extra = _judge(usable_runs(load_runs(runs))[0], load_reference(reference_yaml), science)
    return _headline(*_counts(judged, extra))


def paper_vs_ours(
    runs: Table, reference_yaml: str | Path, deviations: Sequence[str], out_path: str | Path,
    science: pd.DataFrame | str | Path | None = None, causes: Causes = Causes({}, reduced_budget=False),
    science_outputs: str = PIPELINE_OUTPUTS, pending: Mapping[str, str] | None = None,
) -> Path:
    """Write the paper-vs-ours report (Markdown) to ``out_path`` and return the path; ``science``
    (science.csv, see :mod:`kan.reporting.science`) adds the science experiments, saying where each
    one's outputs are (``science_outputs``, with ``{name}`` for the experiment), ``causes``
    explains each number outside its tolerance. ``pending`` names the datasets held back until
    their trainings are all in (dataset -> how many are), which the report lists as such."""
    pending = pending or {}
    reference = load_reference(reference_yaml)
    check_causes(causes, reference)
    loaded = load_runs(runs)
    usable, _ = usable_runs(loaded)
    judged, extra = _judge(usable, reference, science)
    diverged_note = f" {DIVERGED_NOTE}" if (loaded["status"] == "diverged").any() else ""
    sections = [_block_section(j.name, j.block, j.found, j.absent, j.unmatched,
                               (*j.claims, claim_context(j.name, reference[j.name], j.summary)), reference, causes,
                               pending) for j in judged]
    tallies, shapes, claims = _counts(judged, extra)
    top = _headline(tallies, shapes, claims)
    header = [
        "# Paper vs ours", "",
        f"The numbers of \"{reference['paper']['title']}\" (arXiv {reference['paper']['arxiv']}, transcribed in "
        f"`{Path(reference_yaml).as_posix()}`) next to ours, from {len(usable)} run records (one per grid phase "
        f"of a training) with status \"ok\" and the science experiments' summaries. Left out: {left_out(loaded)}."
        f"{diverged_note}", "",
        f"**Fidelity: {top.fidelity.text()}.**", "",
        _fidelity_table(tallies, shapes, claims, top), "",
        f"- ours/paper: the ratio of our value to the paper's; a number is within tolerance when the ratio lies "
        f"in [1/f, f] for the block's factor f, or, for accuracies, when ours − paper (in percentage points) lies "
        f"within the block's tolerance. The stricter band is ×3 for ratios and ±2 pts for accuracies (never looser "
        f"than the block's own). ≈: the paper states the value only roughly. "
        f"{FLAG}: the copies of the paper disagree on this cell, so the paper value is uncertain.",
        "- ours, as the paper's tables: the lowest test RMSE over the dataset's seeds, depths, λ and grid phases "
        "(each phase's last step), so the model is chosen on the test set; there is no validation split. A "
        "minimal shape is the pruned shape with the fewest edges (then hidden nodes) that reaches test RMSE < 1e-2.",
        "- every number outside its tolerance names its likely cause; claims of the paper are checked as bounds on "
        "our numbers (\"claims hold\" counts the claims checked; each section lists those it cannot check, and why).", "",
    ]
    covered = {*COMPARED_BLOCKS, *(block.name for block in extra.blocks)}
    others = [f"- {name}: {reference[name]['source']}" + (f". Not compared: {reference[name][NOT_COMPARED]}"
                                                          if NOT_COMPARED in reference[name] else "")
              for name in reference if name != "paper" and name not in covered]
    sections += extra.sections(causes, science_outputs)
    footer = (["## Paper results without a counterpart in our runs", "", *others, ""] if others else [])
    footer += ["## Deviations", "", *([f"- {d}" for d in deviations] or ["None recorded."])]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(header + sections + footer) + "\n", encoding="utf-8")
    return out_path
