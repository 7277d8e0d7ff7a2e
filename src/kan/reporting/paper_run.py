"""The paper-run report rebuilt from the published records alone (``reports/paper-run/``, see
:mod:`kan.records.publish`): paper_vs_ours.md, the Markdown tables and the Pareto, scaling
and staircase figures, with no training and no run folders."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd

from kan.records.aggregate import RUN_COLUMNS, science_table
from kan.records.markdown import MISSING, markdown_table
from kan.records.publish import COMPLETE, HISTORIES, REPORT_INPUTS, RUNS, SCIENCE, SHARDS
from kan.reporting import figures
from kan.reporting.compare import paper_vs_ours
from kan.reporting.fidelity import Causes
from kan.reporting.tables import copy_science_tables, write_tables

REPORT, TABLES, FIGURES = "paper_vs_ours.md", "tables", "figures"


def status_lines(shards: pd.DataFrame, compared: int, datasets: int) -> list[str]:
    """What the records hold, for the top of the report: shards complete, trainings current,
    CPU hours (the shards' ``cpu_hours``: CPU time of the current records, wall time for a record
    without it) and machine kinds, and how many datasets are compared (``compared`` of
    ``datasets`` with runs: those whose trainings are all in); then the same per experiment
    (:func:`experiment_totals`)."""
    complete = int(shards["complete"].sum())
    machines = machine_kinds(shards)
    return [
        f"**Published records: {complete} of {len(shards)} shards complete; "
        f"{int(shards['current'].sum())} of {int(shards['trainings'].sum())} trainings and "
        f"{int(shards['science_current'].sum())} of {int(shards['science'].sum())} science experiments current "
        f"({int(shards['stale'].sum())} stale, {int(shards['missing'].sum())} missing); "
        f"{shards['cpu_hours'].sum():.1f} CPU hours on {', '.join(machines) or 'no machine yet'}.** "
        f"Per shard: `{SHARDS}`. Compared below: the {compared} of {datasets} datasets with runs whose trainings "
        f"are all in (a dataset's best model is only known once all its trainings are).", "",
        markdown_table(experiment_totals(shards)),
    ]


def machine_kinds(shards: pd.DataFrame) -> list[str]:
    """The machine kinds that computed the shards' records (column ``machines``: space-separated
    kinds, empty for a shard with none), sorted."""
    return sorted({kind for text in shards["machines"].fillna("") for kind in str(text).split()})


def experiment_totals(shards: pd.DataFrame) -> pd.DataFrame:
    """Per experiment (a shard group's prefix: ``feynman``, ``special``, ...; every science
    experiment under ``science``): shards complete, trainings and science experiments current,
    CPU hours and the machine kinds that computed them, with a total row."""
    experiment = shards["groups"].str.split(r"[/:]", n=1, regex=True).str[0]

    def summary(name: str, rows: pd.DataFrame) -> dict[str, object]:
        return {"experiment": name, "shards complete": f"{int(rows['complete'].sum())} of {len(rows)}",
                "trainings current": f"{int(rows['current'].sum())} of {int(rows['trainings'].sum())}",
                "science current": f"{int(rows['science_current'].sum())} of {int(rows['science'].sum())}",
                "CPU hours": f"{rows['cpu_hours'].sum():.1f}", "machine kinds": ", ".join(machine_kinds(rows)) or MISSING}

    rows = [summary(name, shards[experiment == name]) for name in dict.fromkeys(experiment)]
    return pd.DataFrame([*rows, summary("all", shards)])


def as_runs_csv(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table as the pipeline's reports read it from runs.csv (empty text is NaN there),
    so both paths build the same report."""
    return pd.read_csv(io.StringIO(runs.to_csv(index=False)))


def rebuild(records: Path | str, reference_yaml: Path | str) -> list[Path]:
    """Write the report, tables and figures of ``records`` into the same folder (replacing an
    earlier build's); their paths. Only datasets whose trainings are all in are compared."""
    records = Path(records)
    for outputs in (TABLES, FIGURES):  # rebuilt from scratch: nothing of an earlier build stays
        shutil.rmtree(records / outputs, ignore_errors=True)
    every = as_runs_csv(pd.read_parquet(records / RUNS)[list(RUN_COLUMNS)])
    histories = pd.read_parquet(records / HISTORIES)
    inputs = json.loads((records / REPORT_INPUTS).read_text(encoding="utf-8"))
    pairs = every["experiment"] + "/" + every["dataset"]
    runs = every[pairs.isin(inputs[COMPLETE])].reset_index(drop=True)
    science_dirs = sorted(d for d in (records / SCIENCE).glob("*") if d.is_dir())
    report = paper_vs_ours(runs, reference_yaml, inputs["deviations"], records / REPORT, science_table(science_dirs),
                           Causes.of_profile(inputs["miss_causes"], inputs["profile"]))
    title, *rest = report.read_text(encoding="utf-8").split("\n", 2)
    status = status_lines(pd.read_csv(records / SHARDS), pairs[pairs.isin(inputs[COMPLETE])].nunique(), pairs.nunique())
    report.write_text("\n".join([title, "", *status, *rest[1:]]), encoding="utf-8")
    written = [report, *write_tables(runs, records / TABLES), *copy_science_tables(science_dirs, records / TABLES)]
    makers = (("pareto", figures.pareto_frontiers, (runs,)), ("scaling", figures.scaling_plot, (runs,)),
              ("staircase", figures.staircase, (runs, histories)))
    for name, maker, tables in makers:
        folder = records / FIGURES / name
        folder.mkdir(parents=True, exist_ok=True)
        written += maker(*tables, folder)
    return written
