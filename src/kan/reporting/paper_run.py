"""The paper-run report rebuilt from the published records alone (``reports/paper-run/``, see
:mod:`kan.records.publish`): paper_vs_ours.md, the Markdown tables and the Pareto, scaling
and staircase figures, with no training and no run folders."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pandas as pd

from kan.records.aggregate import RUN_COLUMNS, science_table
from kan.records.markdown import MISSING, markdown_table
from kan.records.publish import COMPLETE, HISTORIES, RUNS, SCIENCE, SHARDS, check_report_inputs
from kan.reporting import figures
from kan.reporting.compare import paper_vs_ours
from kan.reporting.fidelity import Causes
from kan.reporting.tables import copy_science_tables, write_tables

REPORT, TABLES, FIGURES = "paper_vs_ours.md", "tables", "figures"
PUBLISHED_OUTPUTS = (f"`{SCIENCE}/{{name}}/` beside this report (summary, run record, tables; the tables also in "
                     f"`{TABLES}/{SCIENCE}/{{name}}/`)")  # where the records keep a science experiment


def status_lines(shards: pd.DataFrame, compared: int, datasets: int) -> list[str]:
    """What the records hold, for the top of the report: shards complete, trainings current,
    CPU hours (the shards' ``cpu_hours``: CPU time of the current records, wall time for a record
    without it) and machine kinds, and how many datasets are compared (``compared`` of
    ``datasets`` with runs: those whose trainings are all in); then the same per experiment
    (:func:`experiment_totals`), with the CPU hours the rest of the run is estimated to need
    (:func:`cpu_hours_left`)."""
    complete = int(shards["complete"].sum())
    machines = machine_kinds(shards)
    left = total_cpu_hours_left(shards)
    remaining = ("" if left == 0 else " The rest is estimated at "
                 f"{'an unknown number of' if left is None else f'{left:.1f}'} CPU hours "
                 "(the complete shards' mean CPU time per training, per experiment).")
    return [
        f"**Published records: {complete} of {len(shards)} shards complete; "
        f"{int(shards['current'].sum())} of {int(shards['trainings'].sum())} trainings and "
        f"{int(shards['science_current'].sum())} of {int(shards['science'].sum())} science experiments current "
        f"({int(shards['stale'].sum())} stale, {int(shards['missing'].sum())} missing); "
        f"{shards['cpu_hours'].sum():.1f} CPU hours on {', '.join(machines) or 'no machine yet'}.** "
        f"Per shard: `{SHARDS}`. Compared below: the {compared} of {datasets} datasets with runs whose trainings "
        f"are all in (a dataset's best model is only known once all its trainings are).{remaining}", "",
        markdown_table(experiment_totals(shards)),
    ]


def machine_kinds(shards: pd.DataFrame) -> list[str]:
    """The machine kinds that computed the shards' records (column ``machines``: space-separated
    kinds, empty for a shard with none), sorted."""
    return sorted({kind for text in shards["machines"].fillna("") for kind in str(text).split()})


def experiment_totals(shards: pd.DataFrame) -> pd.DataFrame:
    """Per experiment (:func:`per_experiment`): shards complete, trainings and science
    experiments current, CPU hours, the CPU hours estimated to be left (:func:`cpu_hours_left`)
    and the machine kinds that computed them, with a total row."""

    def summary(name: str, rows: pd.DataFrame, left: float | None) -> dict[str, object]:
        return {"experiment": name, "shards complete": f"{int(rows['complete'].sum())} of {len(rows)}",
                "trainings current": f"{int(rows['current'].sum())} of {int(rows['trainings'].sum())}",
                "science current": f"{int(rows['science_current'].sum())} of {int(rows['science'].sum())}",
                "CPU hours": f"{rows['cpu_hours'].sum():.1f}",
                "CPU hours left (est.)": MISSING if left is None else f"{left:.1f}",
                "machine kinds": ", ".join(machine_kinds(rows)) or MISSING}

    rows = [summary(name, part, cpu_hours_left(part)) for name, part in per_experiment(shards).items()]
    return pd.DataFrame([*rows, summary("all", shards, total_cpu_hours_left(shards))])


def cpu_hours_left(shards: pd.DataFrame) -> float | None:
    """The CPU hours one experiment's ``shards`` still need, estimated as their stale and missing
    trainings times the mean CPU hours per training of their complete shards: 0 when nothing is
    left, None when there is no such rate (no complete shard with trainings) or a science
    experiment is not current."""
    trainings_left = int((shards["stale"] + shards["missing"]).sum())
    science_left = int((shards["science"] - shards["science_current"]).sum())
    if trainings_left == 0 and science_left == 0:
        return 0.0
    done = shards[shards["complete"] & (shards["trainings"] > 0)]
    if science_left or done.empty:
        return None
    return trainings_left * float(done["cpu_hours"].sum()) / int(done["trainings"].sum())


def total_cpu_hours_left(shards: pd.DataFrame) -> float | None:
    """:func:`cpu_hours_left` of every experiment added up; None when any is unknown."""
    parts = [cpu_hours_left(part) for part in per_experiment(shards).values()]
    return None if None in parts else sum(parts)


def per_experiment(shards: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The shards of each experiment (a shard group's prefix: ``feynman``, ``special``, ...;
    every science experiment under ``science``), in the order they first appear. A shard whose
    groups span several experiments (fewer shards than groups, ``--shards N``) counts under all
    of their names joined, ``feynman + special``: its totals cannot be split between them."""
    experiment = shards["groups"].fillna("").map(
        lambda groups: " + ".join(dict.fromkeys(re.split(r"[/:]", group, maxsplit=1)[0] for group in groups.split())))
    return {name: shards[experiment == name] for name in dict.fromkeys(experiment)}


def pending_datasets(shards: pd.DataFrame) -> dict[str, str]:
    """Dataset -> ``"k of n trainings in"`` for each incomplete shard of one table dataset (groups
    ``<experiment>/<dataset>``), which the report holds back."""
    return {group.split("/", 1)[1]: f"{row.current} of {row.trainings} trainings in"
            for row in shards[~shards["complete"]].itertuples()
            for group in [str(row.groups)] if "/" in group and " " not in group and row.trainings > 0}


def as_runs_csv(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table as the pipeline's reports read it from runs.csv (empty text is NaN there),
    so both paths build the same report."""
    return pd.read_csv(io.StringIO(runs.to_csv(index=False)))


def rebuild(records: Path | str, reference_yaml: Path | str) -> list[Path]:
    """Write the report, tables and figures of ``records`` into the same folder (replacing an
    earlier build's); their paths. Only datasets whose trainings are all in are compared."""
    records = Path(records)
    inputs = check_report_inputs(records)  # before anything is removed
    every = as_runs_csv(pd.read_parquet(records / RUNS)[list(RUN_COLUMNS)])
    histories = pd.read_parquet(records / HISTORIES)
    for outputs in (TABLES, FIGURES):  # rebuilt from scratch: nothing of an earlier build stays
        shutil.rmtree(records / outputs, ignore_errors=True)
    pairs = every["experiment"] + "/" + every["dataset"]
    runs = every[pairs.isin(inputs[COMPLETE])].reset_index(drop=True)
    science_dirs = sorted(d for d in (records / SCIENCE).glob("*") if d.is_dir())
    shards = pd.read_csv(records / SHARDS)
    report = paper_vs_ours(runs, reference_yaml, inputs["deviations"], records / REPORT, science_table(science_dirs),
                           Causes.of_profile(inputs["miss_causes"], inputs["profile"]), PUBLISHED_OUTPUTS,
                           pending_datasets(shards))
    title, *rest = report.read_text(encoding="utf-8").split("\n", 2)
    status = status_lines(shards, pairs[pairs.isin(inputs[COMPLETE])].nunique(), pairs.nunique())
    report.write_text("\n".join([title, "", *status, *rest[1:]]), encoding="utf-8")
    written = [report, *write_tables(runs, records / TABLES), *copy_science_tables(science_dirs, records / TABLES)]
    makers = (("pareto", figures.pareto_frontiers, (runs,)), ("scaling", figures.scaling_plot, (runs,)),
              ("staircase", figures.staircase, (runs, histories)))
    for name, maker, tables in makers:
        folder = records / FIGURES / name
        folder.mkdir(parents=True, exist_ok=True)
        written += maker(*tables, folder)
    return written
