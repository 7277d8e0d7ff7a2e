"""The science experiments (paper §3.4–4.4) next to the paper's numbers and claims.

Our side is ``results/tables/science.csv`` (experiment, metric, value: every summary.json).
The paper's side is the science blocks of ``paper.yaml``: a mapping with an ``ours`` entry puts
each named cell next to our metric (accuracies by difference, within the block's
``accuracy_tolerance``; other numbers by ratio, within its ``tolerance_factor``), and each entry
of ``checks`` is a claim of the paper as a bound on one of our metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pandas as pd

from kan.records.markdown import markdown_table
from kan.reporting.fidelity import Causes, Tally, cause_key, claim_key, ratio_text, strict_tolerance, within_band
from kan.reporting.reference import NOT_COMPARED, OURS, Reference

FLAG = "⚑"
SCIENCE_BLOCKS: Mapping[str, tuple[str, str]] = {  # paper.yaml block -> (our experiment, title)
    "pde": ("pde", "PDE: Poisson equation (§3.4)"),
    "continual_learning": ("continual", "Continual learning (§3.5)"),
    "interpretability": ("interpretability", "Supervised interpretability (§4.1)"),
    "unsupervised": ("unsupervised", "Unsupervised discovery (§4.2)"),
    "knot": ("knots", "Knot theory (§4.3)"),
    "anderson": ("localization", "Anderson localization: mobility edges (§4.4)"),
}
_LABEL_KEYS = ("system", "model", "id", "origin", "stage")

Summary = Mapping[str, float]


@dataclass(frozen=True)
class NumberComparison:
    """One paper cell next to our metric; accuracies compare by difference, others by ratio."""

    quantity: str
    metric: str
    paper: float
    ours: float
    is_accuracy: bool
    tolerance: float  # accuracies: largest |ours - paper|; others: factor f of [1/f, f]
    uncertain: bool = False
    approximate: bool = False
    sided = True  # a science number and the paper's are always of the same model

    @property
    def within_tolerance(self) -> bool:
        return within_band(self.ours, self.paper, self.is_accuracy, self.tolerance)

    @property
    def within_strict(self) -> bool:
        return within_band(self.ours, self.paper, self.is_accuracy, strict_tolerance(self.is_accuracy, self.tolerance))

    def _text(self, value: float) -> str:
        return f"{value:.1%}" if self.is_accuracy else f"{value:.3g}"

    @property
    def difference_text(self) -> str:
        """``+2.1 pts`` for accuracies, ``×0.5`` otherwise."""
        if self.is_accuracy:
            return f"{100 * (self.ours - self.paper):+.1f} pts"
        return "×" + ratio_text(self.ours / self.paper, self.tolerance, self.within_tolerance)

    @property
    def tolerance_text(self) -> str:
        return f"±{100 * self.tolerance:g} pts" if self.is_accuracy else f"×{self.tolerance:g}"

    def row(self) -> dict[str, str]:
        return {
            "quantity": self.quantity, "paper": ("≈" if self.approximate else "") + self._text(self.paper),
            "ours": self._text(self.ours), "ours vs paper": self.difference_text, FLAG: FLAG if self.uncertain else "",
            "verdict": "within tolerance" if self.within_tolerance else f"outside {self.tolerance_text}",
        }

    def statement(self, cause: str = "") -> str:
        flag = f" (paper cell {FLAG}: uncertain)" if self.uncertain else ""
        because = f" Likely cause: {cause}." if cause else ""
        return (f"- {self.quantity}: ours {self._text(self.ours)} against the paper's {self._text(self.paper)} "
                f"({self.difference_text}), beyond the tolerance {self.tolerance_text}{flag}.{because}")


@dataclass(frozen=True)
class ClaimCheck:
    """A claim of the paper as ``metric >= bound`` (``at_least``) or ``metric <= bound`` (``at_most``)."""

    claim: str
    metric: str
    ours: float
    relation: str  # "≥" or "≤"
    bound: float
    bound_text: str

    @property
    def holds(self) -> bool:
        return self.ours >= self.bound if self.relation == "≥" else self.ours <= self.bound

    def row(self) -> dict[str, str]:
        return {"claim": self.claim, "ours": f"{self.metric} = {self.ours:.4g}", "needs": f"{self.relation} {self.bound_text}",
                "verdict": "holds" if self.holds else "does not hold"}

    def statement(self, cause: str = "") -> str:
        because = f" Likely cause: {cause}." if cause else ""
        return (f"- not reproduced: {self.claim} (ours: {self.metric} = {self.ours:.4g}, needs {self.relation} "
                f"{self.bound_text}).{because}")


def summaries(science: pd.DataFrame | str | Path) -> dict[str, dict[str, float]]:
    """experiment -> metric -> value, from science.csv (a frame or its path)."""
    frame = science if isinstance(science, pd.DataFrame) else pd.read_csv(science)
    return {name: dict(zip(part["metric"], part["value"].astype(float))) for name, part in frame.groupby("experiment")}


def _label(node: Mapping[str, Any], key: str) -> str:
    return node.get("label") or " ".join(str(node[k]) for k in _LABEL_KEYS if k in node) or key


def _cells_with_ours(node: Any, key: str = "", inherited: frozenset[str] = frozenset()) -> Iterator[tuple[str, Mapping, bool]]:
    """(label, mapping, approximate by its parent) of every mapping below ``node`` with an ``ours`` entry."""
    if isinstance(node, list):
        for item in node:
            yield from _cells_with_ours(item, key, inherited)
    elif isinstance(node, dict):
        if OURS in node:
            yield _label(node, key), node, key in inherited
        approximate = frozenset(node.get("approximate", ()))
        for child_key, child in node.items():
            if child_key != OURS:
                yield from _cells_with_ours(child, child_key, approximate)


def _quantity(label: str, cell: str) -> str:
    """A science number's quantity as the report (and ``report.miss_causes``) names it."""
    return f"{label}: {cell}"


def cause_keys(reference: Reference) -> set[str]:
    """The ``report.miss_causes`` key of every science number of ``reference`` (see
    :func:`number_comparisons`) and of every checked claim (:func:`kan.reporting.fidelity.claim_key`)."""
    numbers = {cause_key(name, "", _quantity(label, cell)) for name in SCIENCE_BLOCKS if name in reference
               for label, node, _ in _cells_with_ours(reference[name]) for cell in node[OURS]}
    return numbers | claim_keys(reference, SCIENCE_BLOCKS)


def claim_keys(reference: Reference, blocks: Iterable[str]) -> set[str]:
    """The ``report.miss_causes`` key of every check of ``blocks`` that names a metric."""
    return {claim_key(name, check["metric"]) for name in blocks if name in reference
            for check in reference[name].get("checks", ()) if "metric" in check}


def number_comparisons(summary: Summary, block: Mapping[str, Any]) -> tuple[list[NumberComparison], list[str]]:
    """Every ``ours`` cell of ``block`` against ``summary``, and the metrics our summary lacks."""
    found, missing = [], []
    for label, node, parent_approximate in _cells_with_ours(block):
        for cell, metric in node[OURS].items():
            if metric not in summary or math.isnan(summary[metric]):
                missing.append(metric)
                continue
            is_accuracy = cell.endswith("accuracy")
            found.append(NumberComparison(
                quantity=_quantity(label, cell), metric=metric, paper=float(node[cell]), ours=summary[metric],
                is_accuracy=is_accuracy,
                tolerance=float(block["accuracy_tolerance"] if is_accuracy else block["tolerance_factor"]),
                uncertain=cell in node.get("uncertain", ()),
                approximate=parent_approximate or cell in node.get("approximate", ()),
            ))
    return found, missing


def claim_check(summary: Summary, check: Mapping[str, Any]) -> ClaimCheck | list[str]:
    """One ``checks`` entry (``metric`` at least / at most a number or another metric) against
    ``summary``: the check, or the metrics it names that ``summary`` lacks."""
    relation, bound = ("≥", check["at_least"]) if "at_least" in check else ("≤", check["at_most"])
    names = [check["metric"], *([bound] if isinstance(bound, str) else [])]
    absent = [name for name in names if name not in summary]
    if absent:
        return absent
    value = summary[bound] if isinstance(bound, str) else float(bound)
    text = f"{bound} ({value:.4g})" if isinstance(bound, str) else f"{value:g}"
    return ClaimCheck(check["claim"], check["metric"], summary[check["metric"]], relation, value, text)


def claim_checks(summary: Summary, block: Mapping[str, Any]) -> tuple[list[ClaimCheck], list[str]]:
    """Every entry of ``block["checks"]`` against ``summary``, and the metrics our summary lacks."""
    found, missing = [], []
    for check in block.get("checks", ()):
        result = claim_check(summary, check)
        if isinstance(result, ClaimCheck):
            found.append(result)
        else:
            missing += result
    return found, missing


def claim_statements(block: str, checks: Iterable[ClaimCheck], causes: Causes) -> list[str]:
    """Each check of ``block`` that does not hold, spelled out with its likely cause."""
    return [c.statement(causes.explain_claim(claim_key(block, c.metric))) for c in checks if not c.holds]


def not_compared(node: Any, key: str = "") -> Iterator[str]:
    """``label: reason`` of every mapping below ``node`` that gives a ``not_compared`` reason (a
    sentence for the whole mapping, or a mapping cell -> reason)."""
    if isinstance(node, list):
        for item in node:
            yield from not_compared(item, key)
    elif isinstance(node, dict):
        reason = node.get(NOT_COMPARED)
        if isinstance(reason, str):
            yield f"{_label(node, key)}: {reason}"
        elif isinstance(reason, dict):
            yield from (f"{_label(node, key)} {cell}: {text}" for cell, text in reason.items())
        for child_key, child in node.items():
            if child_key not in (OURS, NOT_COMPARED):
                yield from not_compared(child, child_key)


PIPELINE_OUTPUTS = ("`results/science/{name}/` (tables in `reports/tables/science/{name}/`, figures in "
                    "`reports/figures/science/{name}/`)")  # where a pipeline run writes a science experiment

@dataclass(frozen=True)
class ScienceSection:
    """One science block's comparisons, ready to write."""

    name: str
    title: str
    source: str
    experiment: str
    numbers: list[NumberComparison]
    checks: list[ClaimCheck]
    missing: list[str]
    skipped: list[str]  # paper cells not compared, each with its reason

    def section(self, causes: Causes, outputs: str) -> str:
        where = outputs.format(name=self.experiment)
        lines = [f"## Science: {self.title}", "", f"Paper: {self.source}. Ours: {where}.", ""]
        if self.numbers:
            lines += [f"Fidelity: {Tally.of(self.numbers).text()}.", ""]
        for rows in ([c.row() for c in self.numbers], [c.row() for c in self.checks]):
            if rows:
                lines.append(markdown_table(pd.DataFrame(rows), {column: str for column in rows[0]}))
        differs = [c.statement(causes.explain(c, cause_key(self.name, "", c.quantity)))
                   for c in self.numbers if not c.within_tolerance]
        differs += claim_statements(self.name, self.checks, causes)
        if differs:
            lines += ["Where ours differs from the paper:", "", *differs, ""]
        elif self.numbers or self.checks:
            lines += ["Every number is within the tolerance and every claim holds.", ""]
        if self.skipped:
            lines += ["Paper numbers not compared, and why:", "", *[f"- {item}" for item in self.skipped], ""]
        if self.missing:
            lines += [f"Not in our summary (not compared): {', '.join(dict.fromkeys(self.missing))}.", ""]
        return "\n".join(lines)


def _headline_section(experiment: str, summary: Summary) -> str:
    frame = pd.DataFrame({"metric": list(summary), "ours": [f"{v:.4g}" for v in summary.values()]})
    return "\n".join([f"## Science: {experiment}", "",
                      "No numbers of the paper are transcribed for this experiment; our headline numbers:", "",
                      markdown_table(frame, {column: str for column in frame.columns}), ""])


@dataclass(frozen=True)
class ScienceReport:
    """The compared science blocks and the summaries of experiments the paper has no block for."""

    blocks: list[ScienceSection]
    headlines: list[str]

    @property
    def numbers(self) -> list[NumberComparison]:
        return [c for block in self.blocks for c in block.numbers]

    @property
    def checks(self) -> list[ClaimCheck]:
        return [c for block in self.blocks for c in block.checks]

    def sections(self, causes: Causes, outputs: str = PIPELINE_OUTPUTS) -> list[str]:
        """Each block's section, saying where its outputs are (``outputs``, with ``{name}`` for the
        experiment), then the headlines."""
        return [block.section(causes, outputs) for block in self.blocks] + self.headlines


def science_report(science: pd.DataFrame | str | Path, reference: Reference) -> ScienceReport:
    """The science part of paper_vs_ours.md for every experiment in ``science``."""
    ours = summaries(science)
    blocks = []
    for block_name, (experiment, title) in SCIENCE_BLOCKS.items():
        if experiment not in ours:
            continue
        block = reference[block_name]
        found, missing = number_comparisons(ours[experiment], block)
        claims, absent = claim_checks(ours[experiment], block)
        blocks.append(ScienceSection(block_name, title, block["source"], experiment, found, claims, missing + absent,
                             list(not_compared(block))))
    covered = {experiment for experiment, _ in SCIENCE_BLOCKS.values()}
    headlines = [_headline_section(name, values) for name, values in ours.items() if name not in covered]
    return ScienceReport(blocks, headlines)
