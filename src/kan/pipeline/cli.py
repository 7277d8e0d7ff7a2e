"""Command line: ``python -m kan <command>`` (or ``kan-repro <command>``), run from the repository root.

  plan      size of a config's sweep: trainings, runs and optimizer steps per experiment
  check     compare a ci-profile runs table (and science.csv beside it) with reports/reference/ci_expected*
  expected  rewrite this machine kind's rows of reports/reference/ci_expected.csv (and
            ci_expected_science.csv) from a ci-profile run
  ui        the MLflow UI on 127.0.0.1 for the pipeline's tracking store
  publish   merge a profile run's results into published records (reports/paper-run) and
            write which shards they complete
  report    rebuild the report, tables and figures of published records, without training
  preview   what a config would give, read from published records that hold all of its trainings
            (its numbers, report and recorded CPU time), without training
  ui-records  load published records into a local MLflow store and open the UI on it
  unlock    remove a killed run's stale snakemake lock, only when no snakemake run is active here
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from kan.data import dataset_dir
from kan.experiments.progress import forget, publish, shard_table
from kan.experiments.sweep import Training, expand, total_steps
from kan.files import atomic_file
from kan.pipeline.config import ConfigError, load_config, load_yaml
from kan.pipeline.jobs import profile_datasets, report_deviations
from kan.pipeline.preview import preview, preview_headline, write_preview_report
from kan.pipeline.science_jobs import science_requests
from kan.pipeline.regression import (
    compare_band, compare_expected, compare_paper, compare_science_expected, compare_science_paper, compare_trends,
    expected_table, record_for_machine, rows_for_machine, science_expected_table, science_rows_for_machine,
)
from kan.pipeline.resume import unlock_if_idle
from kan.pipeline.tracking import load_published, tracking_uri
from kan.records.provenance import machine_kind
from kan.records.publish import SHARDS
from kan.reporting.paper_run import rebuild
from kan.science.registry import science_deviations

SCHEMA = Path("workflow/schemas/config.schema.yaml")
REFERENCE = Path("reports/reference")
PUBLISHED = Path("reports/paper-run")
PAPER_CONFIG = Path("workflow/config/paper.yaml")
SCIENCE_EXPECTED = "ci_expected_science.csv"


def _science_table(runs: Path) -> Path | None:
    """results/tables/science.csv beside a runs table, if the run made one."""
    path = runs.parent / "science.csv"
    return path if path.is_file() else None


def _plan(args: argparse.Namespace) -> int:
    trainings = expand(load_config(args.config, args.schema))
    print(f"{'experiment':<16}{'trainings':>10}{'runs':>8}{'steps':>10}")
    for experiment in dict.fromkeys(t.experiment for t in trainings):
        mine = [t for t in trainings if t.experiment == experiment]
        print(f"{experiment:<16}{len(mine):>10}{sum(len(t.stages) for t in mine):>8}{sum(map(total_steps, mine)):>10}")
    print(f"{'total':<16}{len(trainings):>10}{sum(len(t.stages) for t in trainings):>8}{sum(map(total_steps, trainings)):>10}")
    print("(one step = one optimizer step; an LBFGS step runs up to lbfgs_max_iter = 20 inner iterations)")
    return 0


def _check(args: argparse.Namespace) -> int:
    def unrecorded(what: str) -> None:
        print(f"{what}: no values recorded on a {machine} machine: floats not compared, only which runs and "
              "numbers exist and their exact columns (`make ci-expected` on such a machine records them)")

    def expected_rows(name: str, rtol: float) -> tuple[pd.DataFrame, float | None]:
        """This machine kind's rows of reports/reference/``name`` and the tolerance to compare
        floats with (None: no rows of this kind, floats not compared)."""
        rows, recorded = rows_for_machine(pd.read_csv(args.reference / name), machine)
        if not recorded:
            unrecorded(name)
        return rows, rtol if recorded else None

    machine = machine_kind()
    runs = pd.read_csv(args.runs)
    spec = load_yaml(args.reference / "ci_expected.yaml")
    failures = compare_expected(runs, *expected_rows("ci_expected.csv", spec["rtol"]))
    failures += compare_band(runs, pd.read_csv(args.reference / "ci_expected.csv"), spec["band_factor"])
    paper = load_yaml(args.reference / "paper.yaml")
    failures += compare_paper(runs, spec["paper_checks"], paper) + compare_trends(runs, spec["trends"])
    science = _science_table(args.runs)
    if science is None:
        print(f"no science.csv beside {args.runs}: science numbers not checked")
    else:
        table = pd.read_csv(science)
        rows, recorded = science_rows_for_machine(pd.read_csv(args.reference / SCIENCE_EXPECTED), machine)
        for experiment in sorted(set(rows["experiment"]) - recorded):
            unrecorded(f"{SCIENCE_EXPECTED}, {experiment}")
        failures += compare_science_expected(table, rows, spec["science_rtol"], recorded)
        failures += compare_science_paper(table, spec["science_paper_checks"], spec["science_claims"], paper)
    for failure in failures:
        print(failure)
    print(f"{len(failures)} failure(s)" if failures else "ci results match the expected values and the paper checks")
    return 1 if failures else 0


def _record(path: Path, table: pd.DataFrame, machine: str) -> None:
    """Replace ``machine``'s rows of the expected-values file at ``path`` with ``table``."""
    existing = pd.read_csv(path) if path.is_file() else None
    record_for_machine(existing, table, machine).to_csv(path, index=False)
    print(f"wrote the {machine} rows of {path}")


def _expected(args: argparse.Namespace) -> int:
    machine = machine_kind()
    _record(args.reference / "ci_expected.csv", expected_table(pd.read_csv(args.runs)), machine)
    science = _science_table(args.runs)
    if science is None:
        print(f"no science.csv beside {args.runs}: {SCIENCE_EXPECTED} left as it is (build results/tables/science.csv too)")
    else:
        _record(args.reference / SCIENCE_EXPECTED, science_expected_table(pd.read_csv(science)), machine)
    return 0


def _ui(args: argparse.Namespace) -> int:
    uri = tracking_uri(args.uri, "results")
    command = ["mlflow", "server", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"]
    print(" ".join(command), flush=True)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.execvp(command[0], command)


def _publish(args: argparse.Namespace) -> int:
    settings = load_config(args.config, args.schema)
    trainings = expand(settings)
    requests = profile_datasets(trainings, science_requests(settings))
    folders = [dataset_dir(args.results.parent / "datasets", family, name) for family, name in requests]
    inputs = {"profile": settings["profile"], "miss_causes": settings["report"]["miss_causes"],
              "deviations": report_deviations(settings["report"]["deviations"], [d for d in folders if d.is_dir()],
                                              science_deviations(settings["science"]))}
    added = publish(args.results, args.out, inputs, trainings, [f"{family}/{name}" for family, name in requests])
    table = _write_shard_table(settings, trainings, args.out, args.shards)
    print(f"published {added['runs']} runs ({added['changed']} new or changed), {added['histories']} histories, "
          f"{added['science']} science experiments "
          f"into {args.out}; {int(table['complete'].sum())} of {len(table)} shards complete; left out "
          f"{added['left_out']} run(s) the profile no longer has and {added['older']} read run(s) whose published "
          "record is newer")
    return 0


def _shard_table(settings: Mapping[str, Any], trainings: Sequence[Training], out: Path,
                 count: int | None = None) -> pd.DataFrame:
    """The profile's shard table of the records in ``out`` (:func:`kan.experiments.progress.shard_table`)."""
    return shard_table(trainings, settings["chunk_size"], list(settings["science"]), out, count)


def _write_shard_table(settings: Mapping[str, Any], trainings: Sequence[Training], out: Path,
                       count: int | None) -> pd.DataFrame:
    """shards.csv of the records in ``out`` (:func:`_shard_table`)."""
    table = _shard_table(settings, trainings, out, count)
    with atomic_file(out / SHARDS) as tmp:
        table.to_csv(tmp, index=False)
    return table


def _forget(args: argparse.Namespace) -> int:
    settings = load_config(args.config, args.schema)
    trainings = expand(settings)
    dropped = forget(args.records, args.status, trainings, settings["profile"])
    table = _write_shard_table(settings, trainings, args.records, args.shards)
    print(f"dropped {dropped} run(s) with status {args.status!r} from {args.records}; "
          f"{int(table['complete'].sum())} of {len(table)} shards complete (rebuild the report: python -m kan report)")
    return 0


def _incomplete_shards(args: argparse.Namespace) -> int:
    settings = load_config(args.config, args.schema)
    table = _shard_table(settings, expand(settings), args.records, args.shards)
    print(",".join(table.loc[~table["complete"], "shard"]))
    return 0


def _report(args: argparse.Namespace) -> int:
    written = rebuild(args.records, args.reference / "paper.yaml")
    print(f"wrote {len(written)} files under {args.records}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    settings = load_config(args.config, args.schema)
    found = preview(settings, args.records)
    top = preview_headline(found, args.reference / "paper.yaml")
    rows = [f"| {name} | {found.trainings.get(name, '')} | {hours:.2f} |" for name, hours in found.cpu_hours.items()]
    print(f"{args.config}: every training and science experiment is published in {args.records} "
          "(the same run ids and settings), so these are its numbers on the machine kinds that recorded them\n")
    print("\n".join(["| experiment | trainings | CPU hours recorded |", "|---|---|---|", *rows,
                     f"| all | {sum(found.trainings.values())} | {found.total_cpu_hours:.2f} |"]))
    print(f"\nrecorded on {', '.join(found.machines)}; on 2 cores at best {found.total_cpu_hours / 2:.1f} h")
    print(f"Fidelity: {top.fidelity.text()}; same shape {top.same_shapes[0]} of {top.same_shapes[1]}; "
          f"claims hold {top.claims[0]} of {top.claims[1]}")
    if args.report:
        print(f"wrote {write_preview_report(settings, found, args.records, args.reference / 'paper.yaml', args.report)}")
    return 0


def _ui_records(args: argparse.Namespace) -> int:
    uri = f"sqlite:///{args.store.resolve()}"
    args.store.parent.mkdir(parents=True, exist_ok=True)
    print(f"loading {args.records} into {uri} (runs already there unchanged are skipped)", flush=True)
    loaded = load_published(uri, args.experiment, args.records,
                            lambda done, total: print(f"  {done} of {total} runs", flush=True))
    print(f"{loaded} runs of {args.records} in {uri}", flush=True)
    args.uri = uri
    return _ui(args)


def _unlock(args: argparse.Namespace) -> int:
    try:
        print(unlock_if_idle(args.directory, args.snakefile))
    except RuntimeError as error:
        print(error)
        return 1
    return 0


def _add_profile_options(command: argparse.ArgumentParser) -> None:
    """``--config`` (default the paper profile) and ``--schema``: the profile a records command reads."""
    command.add_argument("--config", type=Path, default=PAPER_CONFIG)
    command.add_argument("--schema", type=Path, default=SCHEMA)


def _add_shards_option(command: argparse.ArgumentParser) -> None:
    """``--shards N``: the records' run was split into shards k/N (as ``make paper-shard SHARD=k/N``)."""
    command.add_argument("--shards", type=int, default=None,
                         help="the N of the run's shards k/N (default: one per dataset and science experiment)")


def parser() -> argparse.ArgumentParser:
    """The ``kan`` argument parser."""
    root = argparse.ArgumentParser(prog="kan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = root.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="size of a config's sweep")
    plan.add_argument("config", nargs="?", type=Path, default=Path("workflow/config/default.yaml"))
    plan.add_argument("--schema", type=Path, default=SCHEMA)
    plan.set_defaults(run=_plan)
    for name, run, text in (("check", _check, "compare a ci runs table with the expected values"),
                            ("expected", _expected, "rewrite the ci expected values")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("runs", type=Path, help="runs.csv of a ci-profile run")
        sub.add_argument("--reference", type=Path, default=REFERENCE)
        sub.set_defaults(run=run)
    ui = commands.add_parser("ui", help="MLflow UI on 127.0.0.1")
    ui.add_argument("--uri", default="", help="tracking URI (default: $MLFLOW_TRACKING_URI or results/mlflow.db)")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(run=_ui)
    publish = commands.add_parser("publish", help="merge a profile run's results into published records")
    publish.add_argument("results", type=Path, help="the run's results folder (beside its datasets/generated)")
    _add_profile_options(publish)
    publish.add_argument("--out", type=Path, default=PUBLISHED)
    _add_shards_option(publish)
    publish.set_defaults(run=_publish)
    drop = commands.add_parser("forget", help="drop published runs of a status, so that shards train them again")
    drop.add_argument("records", type=Path, nargs="?", default=PUBLISHED)
    drop.add_argument("--status", required=True, help='e.g. "diverged"')
    _add_profile_options(drop)
    _add_shards_option(drop)
    drop.set_defaults(run=_forget)
    rest = commands.add_parser("incomplete-shards",
                               help="the shards k/N (comma-separated) whose trainings published records lack")
    rest.add_argument("records", type=Path, nargs="?", default=PUBLISHED)
    _add_profile_options(rest)
    _add_shards_option(rest)
    rest.set_defaults(run=_incomplete_shards)
    report = commands.add_parser("report", help="rebuild the report of published records")
    report.add_argument("records", type=Path, nargs="?", default=PUBLISHED)
    report.add_argument("--reference", type=Path, default=REFERENCE)
    report.set_defaults(run=_report)
    look = commands.add_parser("preview", help="a config's numbers, report and CPU time from published records")
    look.add_argument("records", type=Path, nargs="?", default=PUBLISHED)
    _add_profile_options(look)
    look.add_argument("--reference", type=Path, default=REFERENCE)
    look.add_argument("--report", type=Path, default=None, help="also write the report (paper_vs_ours.md) there")
    look.set_defaults(run=_preview)
    records_ui = commands.add_parser("ui-records", help="MLflow UI on published records")
    records_ui.add_argument("records", type=Path, nargs="?", default=PUBLISHED)
    records_ui.add_argument("--store", type=Path, default=Path("results/mlflow-paper-run.db"))
    records_ui.add_argument("--experiment", default="kan-paper-run")
    records_ui.add_argument("--port", type=int, default=5000)
    records_ui.set_defaults(run=_ui_records)
    unlock = commands.add_parser("unlock", help="remove a stale snakemake lock when no run is active")
    unlock.add_argument("--directory", type=Path, default=Path("."), help="the workflow's working directory")
    unlock.add_argument("--snakefile", type=Path, default=Path("Snakefile"))
    unlock.set_defaults(run=_unlock)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status: 2, with the message on stderr and no traceback, for
    bad input (an invalid config, a missing or malformed file the command reads). Errors of other
    kinds propagate with their traceback."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as error:  # every problem of the config, each with its config path
        return _bad_input(args, str(error))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
        return _bad_input(args, f"{error.strerror}: {error.filename}" if error.filename else str(error))
    except ValueError as error:  # the commands' own checks of the files they read (runs table, expected values, records)
        if os.environ.get("KAN_TRACEBACK"):
            raise
        where = traceback.extract_tb(error.__traceback__)[-1]
        return _bad_input(args, f"{error} (raised at {Path(where.filename).name}:{where.lineno}; "
                                "KAN_TRACEBACK=1 shows the traceback)")


def _bad_input(args: argparse.Namespace, message: str) -> int:
    print(f"kan {args.command}: {message}", file=sys.stderr)
    return 2
