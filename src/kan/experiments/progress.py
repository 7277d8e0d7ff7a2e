"""How far published records (:mod:`kan.records.publish`) are through a profile's trainings: each
training current, stale or missing, the datasets whose trainings are all current, and per shard
what is done; :func:`publish` merges a results folder and records which datasets it completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from kan.data import definition_of
from kan.files import read_json
from kan.experiments.sweep import Training, chunks, finishing_runs
from kan.records.provenance import DATA_DEFINITION
from kan.records.publish import (
    COMPLETE, REPORT_INPUTS, SCIENCE, check_profile, drop_runs, is_current, merge, published_runs,
    write_report_inputs,
)
from kan.records.science_outputs import RUN_RECORD
from kan.records.shards import group_count, shard_groups, shard_of


def publish(results: Path | str, out: Path | str, report_inputs: Mapping[str, Any],
            trainings: Sequence[Training], datasets: Sequence[str] = ()) -> dict[str, int]:
    """Merge the finished runs and science results of ``results`` into the records in ``out``
    (:func:`kan.records.publish.merge`; only the run ids of ``trainings``, the profile's, are
    kept: runs trained under an earlier config are left out) and write ``report_inputs``
    (profile, deviations, miss causes; dataset deviations in the order of ``datasets``, the
    profile's ``family/name`` pairs) to report.json with the ``experiment/dataset`` pairs of
    ``trainings`` that the records now complete; the counts of :func:`kan.records.publish.merge`."""
    run_ids = {stage.run_id for training in trainings for stage in training.stages}
    merged, added = merge(results, out, report_inputs["profile"], run_ids, data_definitions(trainings))
    complete = complete_datasets(trainings, {r["run_id"]: r for r in merged.to_dict("records")})
    write_report_inputs(out, report_inputs, complete, datasets)
    return added


def forget(out: Path | str, status: str, trainings: Sequence[Training], profile: str) -> int:
    """Drop the published runs of ``status`` (:func:`kan.records.publish.drop_runs`) from the
    records of ``profile`` in ``out`` and record in report.json which datasets of ``trainings``
    (the profile's) the records still complete; how many runs."""
    check_profile(out, profile)
    inputs = read_json(Path(out) / REPORT_INPUTS, "publish the records again")
    dropped = drop_runs(out, status)
    complete = complete_datasets(trainings, published_runs(out))
    write_report_inputs(out, {key: value for key, value in inputs.items() if key != COMPLETE}, complete)
    return dropped


def data_definitions(trainings: Sequence[Training]) -> dict[tuple[str, str], str]:
    """Per (family, dataset) of ``trainings``, the definition digest of the data this code
    generates for it (:func:`kan.data.definition_of`; generated in memory, milliseconds each)."""
    wanted = {(t.family, t.dataset): t.data for t in trainings}
    return {key: definition_of(*key, data["spec"], data["seed"]) for key, data in wanted.items()}


def training_state(training: Training, records: Mapping[str, Mapping[str, Any]],
                   definitions: Mapping[tuple[str, str], str]) -> str:
    """``current``, ``stale`` or ``missing``: whether the records hold the training's last run (or
    a run that ended it early) from current code (:func:`is_current`) on the data this code
    generates (``definitions``, see :func:`data_definitions`; a record naming other data, or none,
    is stale)."""
    done = finishing_runs(training, records)
    if not done:
        return "missing"
    definition = definitions[training.family, training.dataset]
    return "current" if any(is_current(r) and r.get(DATA_DEFINITION) == definition for r in done) else "stale"


def current_trainings(trainings: Sequence[Training], out: Path | str) -> set[str]:
    """The ids (last stage's run id) of those ``trainings`` whose records in ``out`` are current
    (:func:`training_state`: the last run, or one that ended the training early, with every
    earlier phase): what a shard run with ``published`` leaves untrained."""
    records, definitions = published_runs(out), data_definitions(trainings)
    return {t.stages[-1].run_id for t in trainings if training_state(t, records, definitions) == "current"}


def complete_datasets(trainings: Sequence[Training], records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``experiment/dataset`` of every dataset whose trainings are all current in ``records``:
    the report compares only those, so a half-published dataset's best model is not taken for
    the sweep's."""
    states: dict[str, set[str]] = {}
    definitions = data_definitions(trainings)
    for training in trainings:
        state = training_state(training, records, definitions)
        states.setdefault(f"{training.experiment}/{training.dataset}", set()).add(state)
    return sorted(key for key, found in states.items() if found == {"current"})


def shard_table(
    trainings: list[Training], chunk_size: int, science: Sequence[str], out: Path | str, count: int | None = None
) -> pd.DataFrame:
    """Per shard (1..``count``, split as ``kan.records.shards``; default one shard per dataset
    and science experiment, the published paper run's split): the groups it runs, trainings
    and science experiments expected, current, stale and missing in the records of ``out``; the
    machine kinds of its current records and their ``cpu_hours``: the CPU seconds of each
    current training's longest run and of each current science experiment (:func:`cpu_seconds`:
    wall seconds for a record without CPU seconds)."""
    out = Path(out)
    records, definitions = published_runs(out), data_definitions(trainings)
    members = chunks(trainings, chunk_size)
    names = [*members, *(f"science:{name}" for name in science)]
    count = count or group_count(names)
    shards, groups = shard_of(names, count), shard_groups(names, count)
    rows = {k: {"shard": f"{k}/{count}", "groups": " ".join(groups[k]), "trainings": 0, "current": 0, "stale": 0,
                "missing": 0, "science": 0, "science_current": 0, "seconds": 0.0, "machines": set()}
            for k in range(1, count + 1)}
    for name, chunk in members.items():
        row = rows[shards[name]]
        for training in chunk:
            state = training_state(training, records, definitions)
            row["trainings"] += 1
            row[state] += 1
            for stage in training.stages:
                record = records.get(stage.run_id)
                if state == "current" and record is not None:
                    row["machines"].add(record["machine"])
            row["seconds"] += training_cpu_seconds(training, records) if state == "current" else 0.0
    for name in science:
        row = rows[shards[f"science:{name}"]]
        row["science"] += 1
        record_path = out / SCIENCE / name / RUN_RECORD
        if record_path.is_file():
            record = read_json(record_path, f"delete {record_path.parent} and publish its results again")
            if is_current(record, name):
                row["science_current"] += 1
                row["seconds"] += cpu_seconds(record)
                row["machines"].add(record["machine"])
    table = pd.DataFrame(rows.values())
    table["complete"] = (table["current"] == table["trainings"]) & (table["science_current"] == table["science"])
    table["cpu_hours"] = (table.pop("seconds") / 3600).round(4)  # sums of 54 shards stay right to 0.01 h
    table["machines"] = table["machines"].map(lambda kinds: " ".join(sorted(kinds)))
    return table


def training_cpu_seconds(training: Training, records: Mapping[str, Mapping[str, Any]]) -> float:
    """The CPU seconds ``training`` took in ``records``: its longest run's (each run's time counts
    from the training's start), 0 without any."""
    found = [records[s.run_id] for s in training.stages if s.run_id in records]
    return cpu_seconds(max(found, key=lambda r: r["steps"])) if found else 0.0


def cpu_seconds(record: Mapping[str, Any]) -> float:
    """The record's ``cpu_seconds``; its wall ``seconds`` where it has none (records written
    before CPU time was recorded), 0 without either."""
    for key in ("cpu_seconds", "seconds"):
        value = record.get(key)
        if value is not None and not pd.isna(value):
            return float(value)
    return 0.0
