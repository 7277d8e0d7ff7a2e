"""A config judged on published records, without training (``python -m kan preview``).

When every training of a config is current in published records (the same run ids: the same
data, model, seed and schedule) and each of its science experiments has a current published
record with the same settings, those records are exactly what the config would compute on the
machine kinds that recorded them: its numbers, the report they give and the CPU time they took.
The paper-night profile is a subset of the paper profile, so the published paper run previews
and prices it, and any other cut of the paper's sweeps (fewer seeds, depths, λ) can be judged
the same way before anyone spends a night on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from kan.experiments.progress import cpu_seconds, data_definitions, training_cpu_seconds, training_state
from kan.experiments.sweep import Training, expand
from kan.files import read_json
from kan.pipeline.jobs import profile_datasets, report_deviations
from kan.pipeline.science_jobs import science_requests
from kan.records.aggregate import RUN_COLUMNS, science_table
from kan.records.ids import config_id
from kan.records.publish import DATASET_DEVIATION, SCIENCE, check_report_inputs, is_current, published_runs
from kan.records.science_outputs import RUN_RECORD
from kan.reporting.compare import Headline, headline, paper_vs_ours
from kan.reporting.fidelity import Causes
from kan.reporting.paper_run import PUBLISHED_OUTPUTS, as_runs_csv
from kan.science.registry import resolve_settings, science_deviations


class NotPublished(ValueError):
    """Some training or science experiment of the config has no current published record."""


@dataclass(frozen=True)
class Preview:
    """What the published records say a config computes."""

    runs: pd.DataFrame  # the published runs of the config's trainings (the columns of runs.parquet)
    science: list[Path]  # the published folders of its science experiments
    trainings: dict[str, int]  # experiment -> trainings
    cpu_hours: dict[str, float]  # experiment, or "science: <name>" -> CPU hours recorded
    machines: list[str]  # the machine kinds that recorded them

    @property
    def total_cpu_hours(self) -> float:
        return sum(self.cpu_hours.values())


def _describe(training: Training) -> str:
    hidden = training.model["hidden"]
    shape = hidden if hidden == "paper" else "[" + ",".join(map(str, hidden)) + "]"
    return f"{training.experiment}/{training.dataset} {training.variant} {training.kind} hidden {shape} seed {training.seed}"


def _science_folders(settings: Mapping[str, Any], records: Path) -> tuple[list[Path], dict[str, float], set[str]]:
    """The published folder, CPU hours and machine kind of each science experiment of ``settings``;
    NotPublished for one without a current record of the same settings."""
    folders, hours, machines = [], {}, set()
    for name, options in settings["science"].items():
        folder = records / SCIENCE / name
        path = folder / RUN_RECORD
        record = read_json(path, "publish its results again") if path.is_file() else None
        wanted = config_id({"science": name, "settings": resolve_settings(name, options)})
        if record is None or not is_current(record, name) or record.get("config_id") != wanted:
            why = ("none is published" if record is None else "its record is stale" if not is_current(record, name)
                   else "the published one ran with other settings")
            raise NotPublished(f"science experiment '{name}': {why} in {records}")
        folders.append(folder)
        hours[f"science: {name}"] = cpu_seconds(record) / 3600
        machines.add(record["machine"])
    return folders, hours, machines


def preview(settings: Mapping[str, Any], records: Path | str) -> Preview:
    """The published records of every training and science experiment of the validated config
    ``settings``; NotPublished naming what is missing or stale (the config is then not a subset
    of what was published)."""
    records = Path(records)
    trainings = expand(settings)
    published, definitions = published_runs(records), data_definitions(trainings)
    absent = [t for t in trainings if training_state(t, published, definitions) != "current"]
    if absent:
        raise NotPublished(f"{len(absent)} of {len(trainings)} trainings have no current record in {records}, "
                           f"e.g. {_describe(absent[0])}: the config is not a subset of the published runs")
    folders, cpu_hours, machines = _science_folders(settings, records)
    trained, counts = {}, {}
    for training in trainings:
        counts[training.experiment] = counts.get(training.experiment, 0) + 1
        trained[training.experiment] = (trained.get(training.experiment, 0.0)
                                        + training_cpu_seconds(training, published) / 3600)
    ids = {stage.run_id for training in trainings for stage in training.stages}
    runs = pd.DataFrame([record for run_id, record in published.items() if run_id in ids])  # in the records' order
    machines |= set(runs["machine"])
    return Preview(runs, folders, counts, {**trained, **cpu_hours}, sorted(machines))


def preview_headline(found: Preview, reference_yaml: Path | str) -> Headline:
    """The top line of the report the previewed records give."""
    return headline(as_runs_csv(found.runs[list(RUN_COLUMNS)]), reference_yaml, science_table(found.science))


SUMMARY_COLUMNS = ("trainings", "CPU-h recorded", "compared", "within tolerance", "outside, ours better",
                   "outside, ours not better", "same shape", "claims hold")


def summary_cells(found: Preview, top: Headline) -> list[str]:
    """One table row (:data:`SUMMARY_COLUMNS`) of a preview and its headline; "outside, ours not
    better" counts shortfalls and minimal KANs of another shape than the paper's."""
    tally = top.fidelity
    return [str(sum(found.trainings.values())), f"{found.total_cpu_hours:.1f}", str(tally.compared),
            f"{tally.within_tolerance} ({tally.within_tolerance / tally.compared:.0%})", str(tally.outside_better),
            str(tally.compared - tally.within_tolerance - tally.outside_better),
            f"{top.same_shapes[0]} of {top.same_shapes[1]}", f"{top.claims[0]} of {top.claims[1]}"]


def write_preview_report(settings: Mapping[str, Any], found: Preview, records: Path | str,
                         reference_yaml: Path | str, out: Path | str) -> Path:
    """paper_vs_ours.md of the previewed records at ``out``: the config's deviations and causes,
    and the published records' dataset deviations of the config's datasets; it names where the
    science experiments' outputs are (beside it when ``out`` is in ``records``)."""
    names = {f"{family}/{name}" for family, name in profile_datasets(expand(settings), science_requests(settings))}
    science = science_deviations(settings["science"])
    deviations = report_deviations(settings["report"]["deviations"], [], science)
    published = [d for d in check_report_inputs(records)["deviations"]  # in the pipeline's order
                 if DATASET_DEVIATION.match(d) and (d.split(": ", 1)[0] in names or d in science)]
    ordered = [*(d for d in deviations if not DATASET_DEVIATION.match(d)), *published, *deviations]
    outputs = PUBLISHED_OUTPUTS if Path(out).parent.resolve() == Path(records).resolve() else (
        f"`{Path(records).as_posix()}/{SCIENCE}/{{name}}/`, in the published records this report was read from")
    return paper_vs_ours(as_runs_csv(found.runs[list(RUN_COLUMNS)]), reference_yaml,
                         list(dict.fromkeys(ordered)), out, science_table(found.science),
                         Causes.of_profile(settings["report"]["miss_causes"], settings["profile"]), outputs)
