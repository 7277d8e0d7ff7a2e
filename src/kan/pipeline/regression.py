"""Regression checks of a runs table and of the science table (science.csv): against committed
expected values of the same profile (tight: same code, same seeds, same kind of machine) and
against the paper's numbers (loose, documented factors). Every failure is a sentence naming the
experiment, the run or number, and the values.

The expected-values files keep one set of rows per machine kind (column ``machine``, see
:func:`kan.records.provenance.machine_kind`): results are bitwise repeatable on one kind of
CPU but not across kinds, so floats are compared tightly only with values recorded on the same kind;
which runs and numbers exist, the exact columns, and a band around the values of every recorded
kind (:func:`compare_band`) are checked on every machine.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import pandas as pd

from kan.reporting.science import SCIENCE_BLOCKS, claim_checks, number_comparisons, summaries

MACHINE = "machine"
KEY = "run_id"
EXACT = ("experiment", "dataset", "model", "variant", "shape", "grid", "seed", "n_params", "steps", "status")
CLOSE = ("train_rmse", "test_rmse")
EXPECTED_COLUMNS = (KEY, *EXACT, *CLOSE)


def expected_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The columns of a runs table that the expected-values file keeps, in a readable order."""
    order = ["experiment", "dataset", "model", "variant", "shape", "seed", "steps", KEY]
    return runs[list(EXPECTED_COLUMNS)].sort_values(order, ignore_index=True)


def _label(row: Mapping[str, Any]) -> str:
    return f"{row['experiment']}/{row['dataset']} {row['variant']} {row['shape']} G={row['grid']} seed={row['seed']} (run {row[KEY]})"


def record_for_machine(existing: pd.DataFrame | None, table: pd.DataFrame, machine: str) -> pd.DataFrame:
    """An expected-values file (``existing``, or none yet) with the rows of ``machine`` replaced
    by ``table``; the other kinds' rows are kept."""
    new = table.assign(**{MACHINE: machine})[[MACHINE, *table.columns]]
    if existing is None:
        return new
    if MACHINE not in existing.columns:
        raise ValueError(f"expected-values file has no '{MACHINE}' column: rewrite it with `make ci-expected`")
    kept = existing[existing[MACHINE] != machine]
    return pd.concat([kept, new], ignore_index=True).sort_values(MACHINE, kind="stable", ignore_index=True)


def rows_for_machine(expected: pd.DataFrame, machine: str) -> tuple[pd.DataFrame, bool]:
    """``(rows, recorded)``: the expected rows recorded on ``machine`` (``recorded`` True) or,
    where that kind has none, those of the first kind on file, for the comparisons that hold
    across machines (``recorded`` False)."""
    if MACHINE not in expected.columns or expected.empty:
        raise ValueError(f"expected-values file has no '{MACHINE}' column or no rows: rewrite it with `make ci-expected`")
    kinds = sorted(expected[MACHINE].unique())
    chosen = machine if machine in kinds else kinds[0]
    return expected[expected[MACHINE] == chosen].drop(columns=MACHINE).reset_index(drop=True), chosen == machine


def compare_expected(runs: pd.DataFrame, expected: pd.DataFrame, rtol: float | None) -> list[str]:
    """Differences between ``runs`` and ``expected`` (one machine kind's rows): missing or extra
    runs, any change in the exact columns, and RMSEs whose relative difference exceeds ``rtol``
    (not compared when ``rtol`` is None: values recorded on another kind of machine)."""
    ours = runs.set_index(KEY)
    theirs = expected.set_index(KEY)
    failures = [f"missing run: {_label(row)}" for _, row in expected[~expected[KEY].isin(ours.index)].iterrows()]
    failures += [f"unexpected run: {_label(row)}" for _, row in runs[~runs[KEY].isin(theirs.index)].iterrows()]
    for run_id in theirs.index.intersection(ours.index):
        want, got = theirs.loc[run_id], ours.loc[run_id]
        label = _label({**want.to_dict(), KEY: run_id})
        for column in EXACT:
            if str(want[column]) != str(got[column]):
                failures.append(f"{label}: {column} is {got[column]}, expected {want[column]}")
        for column in CLOSE if rtol is not None else ():
            a, b = float(got[column]), float(want[column])
            if not math.isclose(a, b, rel_tol=rtol, abs_tol=0.0) and not (math.isnan(a) and math.isnan(b)):
                failures.append(f"{label}: {column} = {a:.6g}, expected {b:.6g} (relative tolerance {rtol:g})")
    return failures


def compare_band(runs: pd.DataFrame, expected: pd.DataFrame, factor: float) -> list[str]:
    """RMSEs outside the band that the values recorded on every machine kind span (``expected``
    with its ``machine`` column), widened by ``factor`` either way: a check that holds on any kind
    of machine, recorded or not. Runs that are missing are left to :func:`compare_expected`."""
    ours = runs.set_index(KEY)
    spans = expected.groupby(KEY)[list(CLOSE)].agg(["min", "max"])
    failures = []
    for run_id in spans.index.intersection(ours.index):
        label = _label({**ours.loc[run_id].to_dict(), KEY: run_id})
        for column in CLOSE:
            low, high, value = spans.loc[run_id, (column, "min")], spans.loc[run_id, (column, "max")], ours.loc[run_id, column]
            if not low / factor <= value <= high * factor:
                failures.append(f"{label}: {column} = {value:.6g}, outside [{low / factor:.6g}, {high * factor:.6g}] "
                                f"(recorded {low:.6g}..{high:.6g} on {expected[MACHINE].nunique()} machine kinds, x{factor:g})")
    return failures


def best_rmse(runs: pd.DataFrame, experiment: str, dataset: str, variants: Iterable[str]) -> float:
    """Lowest test RMSE among finished runs of the given variants (NaN if there are none)."""
    chosen = runs[(runs["experiment"] == experiment) & (runs["dataset"] == dataset)
                  & runs["variant"].isin(list(variants)) & (runs["status"] == "ok")]
    return float(chosen["test_rmse"].min()) if len(chosen) else float("nan")


def paper_value(reference: Mapping[str, Any], block: str, dataset: str, column: str) -> float:
    """One number of reports/reference/paper.yaml: ``column`` of ``dataset``'s row in ``block``."""
    rows = [row for row in reference[block]["rows"] if row["dataset"] == dataset]
    if len(rows) != 1 or column not in rows[0]:
        raise KeyError(f"paper.yaml has no {block}/{dataset}/{column}")
    return float(rows[0][column])


def compare_paper(runs: pd.DataFrame, checks: Iterable[Mapping[str, Any]], reference: Mapping[str, Any]) -> list[str]:
    """Each check ``{experiment, dataset, variants, paper: {block, column}, factor}`` passes when
    our best test RMSE of those variants is at most ``factor`` times the paper's value, read
    from ``reference`` (the parsed paper.yaml)."""
    failures = []
    for check in checks:
        where = check["paper"]
        paper = paper_value(reference, where["block"], check["dataset"], where["column"])
        ours = best_rmse(runs, check["experiment"], check["dataset"], check["variants"])
        if not ours <= check["factor"] * paper:
            failures.append(
                f"{check['experiment']}/{check['dataset']} {'+'.join(check['variants'])}: best test RMSE {ours:.3g} "
                f"exceeds {check['factor']:g} x the paper's {paper:.3g} (paper.yaml {where['block']}/{where['column']})"
            )
    return failures


def compare_trends(runs: pd.DataFrame, trends: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each trend ``{experiment, dataset, variant, shape, claim}`` passes when test RMSE falls
    with every grid refinement of that KAN (the paper's grid-extension claim)."""
    failures = []
    for trend in trends:
        ladder = runs[(runs["experiment"] == trend["experiment"]) & (runs["dataset"] == trend["dataset"])
                      & (runs["variant"] == trend["variant"]) & (runs["shape"] == trend["shape"])].sort_values("grid")
        values = ladder["test_rmse"].tolist()
        if len(values) < 2 or any(later >= earlier for earlier, later in zip(values, values[1:])):
            grids = ", ".join(f"G={g}: {v:.3g}" for g, v in zip(ladder["grid"], values))
            failures.append(f"{trend['experiment']}/{trend['dataset']} {trend['shape']}: {trend['claim']} fails ({grids or 'no runs'})")
    return failures


TIMING = "seconds"  # science metrics named *seconds measure time, not results: never compared


def science_expected_table(science: pd.DataFrame) -> pd.DataFrame:
    """The rows of a science table that the expected-values file keeps (timings left out)."""
    return science[~science["metric"].str.endswith(TIMING)].reset_index(drop=True)


def _science_values(science: pd.DataFrame) -> dict[tuple[str, str], float]:
    kept = science_expected_table(science)
    return {(e, m): float(v) for e, m, v in zip(kept["experiment"], kept["metric"], kept["value"])}


def science_rows_for_machine(expected: pd.DataFrame, machine: str) -> tuple[pd.DataFrame, set[str]]:
    """Per science experiment, the expected rows recorded on ``machine``, else those of the first
    kind that has the experiment (see :func:`rows_for_machine`); and the experiments recorded on
    ``machine``, whose values can be compared. An experiment whose numbers moved is re-recorded on
    one kind and dropped from the others until they are re-recorded too."""
    if MACHINE not in expected.columns or expected.empty:
        raise ValueError(f"expected-values file has no '{MACHINE}' column or no rows: rewrite it with `make ci-expected`")
    parts, recorded = [], set()
    for experiment, rows in expected.groupby("experiment", sort=False):
        chosen, _ = rows_for_machine(rows, machine)
        parts.append(chosen)
        if machine in set(rows[MACHINE]):
            recorded.add(str(experiment))
    return pd.concat(parts, ignore_index=True), recorded


def compare_science_expected(science: pd.DataFrame, expected: pd.DataFrame, rtol: float | None,
                             compared: set[str] | None = None) -> list[str]:
    """Differences between two science tables (experiment, metric, value): missing or extra
    numbers, and values whose relative difference exceeds ``rtol`` (NaN equals NaN; not compared
    when ``rtol`` is None, and only for the experiments in ``compared`` when given); timings
    (metrics named ``*seconds``) are not compared."""
    ours, theirs = _science_values(science), _science_values(expected)
    failures = [f"missing science number: {e} {m} (expected {theirs[(e, m)]:.6g})" for e, m in theirs if (e, m) not in ours]
    failures += [f"unexpected science number: {e} {m} = {ours[(e, m)]:.6g}" for e, m in ours if (e, m) not in theirs]
    for key in theirs.keys() & ours.keys() if rtol is not None else ():
        if compared is not None and key[0] not in compared:
            continue
        a, b = ours[key], theirs[key]
        if not math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12) and not (math.isnan(a) and math.isnan(b)):
            failures.append(f"science {key[0]}: {key[1]} = {a:.6g}, expected {b:.6g} (relative tolerance {rtol:g})")
    return sorted(failures)


def compare_science_paper(science: pd.DataFrame, checks: Iterable[Mapping[str, Any]], claims: Iterable[Mapping[str, Any]],
                          reference: Mapping[str, Any]) -> list[str]:
    """Loose checks of science numbers against the paper (parsed paper.yaml).

    ``checks``: ``{experiment, metric, tolerance}``: our number against the paper cell that
    paper.yaml maps to the same metric (accuracies: |ours - paper| <= tolerance; others:
    ours/paper within [1/tolerance, tolerance]). ``claims``: ``{experiment, metric}``: the paper
    claim that paper.yaml's ``checks`` state on that metric must hold.
    """
    ours = summaries(science)
    blocks = {experiment: name for name, (experiment, _) in SCIENCE_BLOCKS.items()}
    failures = []
    for check in checks:
        block = {**reference[blocks[check["experiment"]]], "accuracy_tolerance": check["tolerance"],
                 "tolerance_factor": check["tolerance"]}
        found = [c for c in number_comparisons(ours.get(check["experiment"], {}), block)[0] if c.metric == check["metric"]]
        if not found:
            failures.append(f"science {check['experiment']}: no number {check['metric']} to compare with the paper")
        failures += [f"science {check['experiment']}: {c.statement()[2:]}" for c in found if not c.within_tolerance]
    for claim in claims:
        found = [c for c in claim_checks(ours.get(claim["experiment"], {}), reference[blocks[claim["experiment"]]])[0]
                 if c.metric == claim["metric"]]
        if not found:
            failures.append(f"science {claim['experiment']}: no claim on {claim['metric']} to check")
        failures += [f"science {claim['experiment']}: {c.statement()[2:]}" for c in found if not c.holds]
    return failures
