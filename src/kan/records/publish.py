"""Published records of a profile run (``reports/paper-run/``): compact enough to commit, complete
enough to rebuild the report and an MLflow store without training.

``runs.parquet``        one row per run: the runs-table columns, the training's config and provenance
``histories.parquet``   per training, the history of its longest run, thinned (every
                        ``HISTORY_EVERY``-th step and each grid phase's last step; full for the
                        experiments in ``FULL_HISTORIES``), values as float32 (for plots)
``science/<name>/``     each science experiment's summary.json, run.json and tables (the newest,
                        by the rule for runs below)
``report.json``         what the report needs besides the records (profile, deviations, miss causes,
                        the experiment/dataset pairs whose trainings are all current)
``shards.csv``          per shard: trainings and science experiments expected, current, stale, missing;
                        CPU hours (CPU seconds of the current records; wall seconds for a record
                        without them) and machine kinds

Shards are published one at a time: :func:`merge` merges a results folder into the records
already there (a run id's newest record wins: a current record over a stale one, then the later
``finished_at``; a training's history is that of its longest kept run; only the run ids of the
profile are kept; :func:`kan.experiments.progress.publish` adds which datasets of the profile they
complete). A record is current when its code fingerprint equals the one this code has on the
record's machine kind, and that kind has recorded ci values; a training counts as current when,
besides, its records name the definition of the data this code generates for its dataset
(``data_definition``, :mod:`kan.experiments.progress`). Science results that another
profile made, or whose files are not valid JSON, are refused before anything is written; each
file and science folder is then replaced whole (:mod:`kan.files`), so a publish killed part-way
leaves whole files, and publishing the same results again completes it. A results folder with
an empty ``runs`` folder adds nothing: publishing it
re-derives report.json's complete datasets and shards.csv from the records alone.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping, Sequence

import pandas as pd

from kan.files import atomic_file, atomic_folder, read_json, sha256_file
from kan.records.aggregate import RUN_COLUMNS, runs_table
from kan.records.ids import canonical_json
from kan.records.provenance import DATA_DEFINITION, FINGERPRINT, PLACEHOLDERS, code_fingerprint
from kan.records.runfiles import HISTORY_COLUMNS, is_finished, longest_first, read_history, read_metrics
from kan.records.science_outputs import RERUN_EXPERIMENT

RUNS, HISTORIES, SHARDS, REPORT_INPUTS, SCIENCE = "runs.parquet", "histories.parquet", "shards.csv", "report.json", "science"
RUNS_DIGEST = "runs_sha256"  # report.json: the runs.parquet it was written for
PROVENANCE = ("training_id", "final_stage", "profile", "git_commit", "machine", FINGERPRINT, DATA_DEFINITION,
              "finished_at", "cpu_seconds")
RECORD_COLUMNS = (*RUN_COLUMNS, *PROVENANCE, "config")
HISTORY_EVERY = 100
FULL_HISTORIES = ("grid_extension",)  # the staircase figure draws every step
SCIENCE_FILES = ("summary.json", "run.json")
COMPLETE = "complete_datasets"  # report.json key


def run_records(run_dirs: Iterable[Path]) -> pd.DataFrame:
    """One row per finished run folder: ``RECORD_COLUMNS`` (config as canonical JSON)."""
    run_dirs = list(run_dirs)
    if not run_dirs:
        return pd.DataFrame(columns=list(RECORD_COLUMNS))
    table = runs_table(run_dirs).set_index("run_id", drop=False)
    extra = {}
    for directory in run_dirs:
        metrics = read_metrics(directory)
        extra[metrics["run_id"]] = {**{k: metrics.get(k) for k in PROVENANCE}, "config": canonical_json(metrics["config"])}
    frame = table.join(pd.DataFrame.from_dict(extra, orient="index")).reset_index(drop=True)
    return frame.astype({"final_stage": "bool", "finished_at": "float64", "cpu_seconds": "float64"})[list(RECORD_COLUMNS)]


def thinned_history(history: pd.DataFrame, every: int = HISTORY_EVERY) -> pd.DataFrame:
    """Every ``every``-th step, the first step and the last step of each grid phase."""
    if history.empty:
        return history
    phase_ends = history["grid"].ne(history["grid"].shift(-1))
    keep = (history["step"] % every == 0) | phase_ends
    keep.iloc[0] = True
    return history[keep].reset_index(drop=True)


def training_histories(run_dirs: Iterable[Path]) -> pd.DataFrame:
    """Per training, the history of its longest run (:func:`longest_first`; a run's history holds
    every earlier phase), under that run's id; thinned except for ``FULL_HISTORIES``."""
    longest: dict[str, tuple[tuple[int, bool], Path, str]] = {}
    for directory in run_dirs:
        metrics = read_metrics(directory)
        training = metrics.get("training_id") or metrics["run_id"]  # a run without one is its own
        current = longest.get(training)
        if current is None or longest_first(metrics) < current[0]:
            longest[training] = (longest_first(metrics), Path(directory), metrics["experiment"])
    frames = []
    for _, directory, experiment in longest.values():
        history = read_history(directory)[list(HISTORY_COLUMNS)]
        kept = history if experiment in FULL_HISTORIES else thinned_history(history)
        frames.append(kept.assign(run_id=directory.name))
    columns = ["run_id", *HISTORY_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns)
    values = {c: "float32" for c in HISTORY_COLUMNS if c not in ("step", "grid")}
    return pd.concat(frames, ignore_index=True)[columns].astype(values)


def _sorted(frame: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    return frame.sort_values(list(order), ignore_index=True, kind="stable")


def newest(old: pd.DataFrame | None, new: pd.DataFrame,
           definitions: Mapping[tuple[str, str], str] | None = None) -> tuple[pd.DataFrame, set[str]]:
    """Per run id, the newest of the records ``old`` and ``new``: a current record over a stale
    one (:func:`is_current`, and, with ``definitions`` (per (family, dataset) the definition
    digest of the data this code generates), trained on that data), then the later
    ``finished_at`` (none: the oldest), then ``new``'s; the kept rows (``old``'s first) and the
    run ids whose kept record is ``new``'s."""
    frames = [f for f in (old, new) if f is not None and not f.empty]
    if not frames:
        return new.iloc[0:0], set()
    both = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    source = [False] * (len(both) - len(new)) + [True] * len(new)  # new's rows come last
    pairs = list(zip(both["machine"], both[FINGERPRINT]))
    current = {pair: is_current({"machine": pair[0], FINGERPRINT: pair[1]}) for pair in set(pairs)}
    flags = [current[p] for p in pairs]
    if definitions is not None:
        data = zip(both["family"], both["dataset"], both[DATA_DEFINITION])
        flags = [flag and definitions.get((family, dataset)) == digest
                 for flag, (family, dataset, digest) in zip(flags, data)]
    rank = pd.DataFrame({"run_id": both["run_id"], "current": flags,
                         "finished": both["finished_at"].astype("float64").fillna(-math.inf),
                         "position": range(len(both))})
    kept = rank.sort_values(["current", "finished", "position"], kind="stable").groupby("run_id").tail(1).index
    kept = sorted(kept)
    return both.loc[kept].reset_index(drop=True), {both.at[i, "run_id"] for i in kept if source[i]}


def longest_histories(histories: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Of ``histories`` (each under a run id of ``records``), per training (``training_id``; a run
    without one is its own) the history of its run that comes first by :func:`longest_first`."""
    if histories.empty:
        return histories
    runs = records.set_index("run_id")
    ids = pd.Series(histories["run_id"].unique())
    rank = {run_id: longest_first(runs.loc[run_id]) for run_id in ids}
    training = ids.map(runs["training_id"]).fillna(ids)
    chosen = {min(group, key=rank.__getitem__) for _, group in ids.groupby(training)}
    return histories[histories["run_id"].isin(chosen)]


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.is_file() else None


def finished_runs(results: Path) -> list[Path]:
    """Every complete run folder under ``<results>/runs``, in path order; hidden folders (the
    ``.<id>.tmp-*`` and ``.<id>.old-*`` leftovers of an interrupted write) are none."""
    runs = Path(results) / "runs"
    return sorted(d for d in runs.glob("*/*/*")
                  if not any(part.startswith(".") for part in d.relative_to(runs).parts) and is_finished(d))


def finished_science(results: Path) -> list[Path]:
    """Every science result folder under ``<results>/science`` that has its run record."""
    return sorted(d for d in (Path(results) / "science").glob("*") if all((d / n).is_file() for n in SCIENCE_FILES))


def _check_science(result_dirs: Sequence[Path], profile: str) -> None:
    """Refuse, before anything is written, science results whose files are not valid JSON or
    that another profile made (the results folder may be shared by several profiles)."""
    foreign = []
    for directory in result_dirs:
        files = {name: read_json(directory / name, RERUN_EXPERIMENT) for name in SCIENCE_FILES}
        if files["run.json"].get("profile") != profile:
            foreign.append(f"{directory.name} ({files['run.json'].get('profile')})")
    if foreign:
        raise ValueError(f"science results {', '.join(foreign)} come from another profile than {profile!r}; "
                         "publish each profile's results on their own")


def _science_rank(run: Mapping[str, Any], name: str) -> tuple[bool, float]:
    """How new a science run record is: current (:func:`is_current`) first, then ``finished_at``."""
    finished = run.get("finished_at")
    return is_current(run, name), -math.inf if finished is None else float(finished)


def newer_science(result_dirs: Sequence[Path], out: Path) -> list[Path]:
    """Of the science results ``result_dirs``, those to publish into ``out``: all but those whose
    published record is newer (as runs: a current record over a stale one, then the later
    ``finished_at``). Read before anything is written, so a damaged published record stops the
    publish with nothing changed."""
    newer = []
    for result_dir in result_dirs:
        published = out / SCIENCE / result_dir.name / "run.json"
        if published.is_file():
            ours = read_json(result_dir / "run.json", RERUN_EXPERIMENT)
            theirs = read_json(published, f"delete {published.parent} and publish its results again")
            if _science_rank(theirs, result_dir.name) > _science_rank(ours, result_dir.name):
                continue
        newer.append(result_dir)
    return newer


def publish_science(result_dir: Path, out: Path) -> Path:
    """Copy a science experiment's summary, run record and tables into ``<out>/science/<name>``
    (replacing the folder whole); the folder written."""
    target = out / SCIENCE / result_dir.name
    with atomic_folder(target) as tmp:
        (tmp / "tables").mkdir()
        for name in SCIENCE_FILES:
            shutil.copy2(result_dir / name, tmp / name)
        for table in sorted((result_dir / "tables").glob("*.*")):
            shutil.copy2(table, tmp / "tables" / table.name)
    return target


def check_profile(out: Path | str, profile: str) -> None:
    """Refuse to change the records in ``out`` for ``profile`` when they are another profile's
    (report.json or the runs say so): merging or forgetting with the wrong config would drop
    every published run that config does not have."""
    out = Path(out)
    found = set()
    if (out / REPORT_INPUTS).is_file():
        found.add(read_json(out / REPORT_INPUTS, "publish the records again").get("profile"))
    runs = _read(out / RUNS)
    if runs is not None:
        found |= set(runs["profile"].dropna().unique())
    others = sorted(str(name) for name in found - {profile})
    if others:
        raise ValueError(f"{out} holds records of profile {', '.join(others)}, not {profile!r}: give that "
                         "profile's config, or another folder (--out/--records) for this profile's records")


DATASET_DEVIATION = re.compile(r"^[a-z]+/[^:\s]+: ")  # how report_deviations names a dataset's own


def merge(results: Path | str, out: Path | str, profile: str, run_ids: Collection[str] | None = None,
          definitions: Mapping[tuple[str, str], str] | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Merge the finished runs and science results of ``results`` (all of profile ``profile``) into
    the records in ``out``, per run id the newest record (:func:`newest`, which ranks records on
    other data than ``definitions`` name as stale) and per training the
    history of its longest kept run; with ``run_ids`` (every run id of the profile) runs outside
    it are left out, read or published before. The merged run records and counts: ``runs`` and
    ``histories`` added (or replaced; ``changed``: the runs new or different), ``science``
    experiments copied, ``older`` runs read but not kept (the published record is newer),
    ``left_out`` runs outside ``run_ids``."""
    results, out = Path(results), Path(out)
    if not (results / "runs").is_dir():
        raise FileNotFoundError(f"{results} holds no runs folder: give the results folder of a profile run")
    runs = finished_runs(results)
    records = run_records(runs)
    foreign = records[records["profile"] != profile]
    if len(foreign):
        found = ", ".join(sorted(map(str, foreign["profile"].unique())))
        raise ValueError(f"{results}: {len(foreign)} of {len(records)} runs come from profile(s) {found}, not "
                         f"{profile!r}; publish each profile's results on their own")
    science_dirs = finished_science(results)
    _check_science(science_dirs, profile)
    check_profile(out, profile)
    science_dirs = newer_science(science_dirs, out)
    out.mkdir(parents=True, exist_ok=True)
    previous, previous_histories = _read(out / RUNS), _read(out / HISTORIES)
    left_out = 0
    if run_ids is not None:  # runs trained under an earlier version of the profile's config
        wanted = set(run_ids)
        left_out = int((~records["run_id"].isin(wanted)).sum())
        records = records[records["run_id"].isin(wanted)]
        if previous is not None:
            left_out += int((~previous["run_id"].isin(wanted)).sum())
            previous = previous[previous["run_id"].isin(wanted)]
    order = ["experiment", "dataset", "model", "variant", "initial_shape", "lamb", "activation", "seed", "steps", "run_id"]
    kept, from_new = newest(previous, records, definitions)
    merged = _sorted(kept, order)
    histories = training_histories(d for d in runs if d.name in from_new)  # a run folder is named by its id
    if previous_histories is not None:  # the published histories of runs whose published record stays
        previous_histories = previous_histories[previous_histories["run_id"].isin(set(merged["run_id"]) - from_new)]
    frames = [f for f in (previous_histories, histories) if f is not None and not f.empty]
    candidates = pd.concat(frames, ignore_index=True) if frames else histories
    merged_histories = _sorted(longest_histories(candidates, merged), ["run_id", "step"])
    _write_runs(out, merged, merged_histories)
    science = [publish_science(d, out) for d in science_dirs]
    added = merged_histories.loc[merged_histories["run_id"].isin(from_new), "run_id"].nunique()
    return merged, {"runs": len(from_new), "changed": _changed(previous, merged, from_new), "histories": int(added),
                    "science": len(science), "older": len(records) - len(from_new), "left_out": left_out}


def _changed(previous: pd.DataFrame | None, merged: pd.DataFrame, run_ids: Collection[str]) -> int:
    """How many of ``run_ids`` (records just merged in) are new to the records or differ from the
    record ``previous`` held (republishing a results folder replaces records with equal ones)."""
    def rows(frame: pd.DataFrame | None) -> dict[str, str]:
        if frame is None:
            return {}
        chosen = frame[frame["run_id"].isin(run_ids)]
        return dict(zip(chosen["run_id"], (row.to_json() for _, row in chosen.iterrows())))

    before, after = rows(previous), rows(merged)
    return sum(before.get(run_id) != text for run_id, text in after.items())


def drop_runs(out: Path | str, status: str) -> int:
    """Remove the published runs of ``status`` and their histories from the records in ``out``, so
    their trainings count as missing and a shard run with ``published`` trains them again (after a
    fix that changes when a training stops, which the code fingerprint does not see); how many."""
    out = Path(out)
    runs, histories = _read(out / RUNS), _read(out / HISTORIES)
    if runs is None:
        raise FileNotFoundError(f"{out} holds no {RUNS}: give a folder of published records")
    dropped = runs[runs["status"] == status]
    if histories is None:
        histories = pd.DataFrame(columns=["run_id", *HISTORY_COLUMNS])
    _write_runs(out, runs.drop(index=dropped.index), histories[~histories["run_id"].isin(set(dropped["run_id"]))])
    return len(dropped)


def _write_runs(out: Path, runs: pd.DataFrame, histories: pd.DataFrame) -> None:
    """runs.parquet and histories.parquet, both written in full before either replaces its old
    file (then one rename after the other), so a kill leaves the two consistent."""
    with atomic_file(out / RUNS) as runs_tmp, atomic_file(out / HISTORIES) as histories_tmp:
        runs.to_parquet(runs_tmp, index=False)
        histories.to_parquet(histories_tmp, index=False)


def write_report_inputs(out: Path | str, report_inputs: Mapping[str, Any], complete: Sequence[str],
                        datasets: Sequence[str] = ()) -> None:
    """report.json: ``report_inputs`` (profile, deviations, miss causes; earlier dataset deviations
    kept, in the order of ``datasets``, the profile's ``family/name`` pairs) and the
    ``experiment/dataset`` pairs ``complete`` whose trainings the records hold."""
    path = Path(out) / REPORT_INPUTS
    deviations = _kept_dataset_deviations(path, report_inputs.get("deviations", []), datasets)
    text = json.dumps({**report_inputs, "deviations": deviations, COMPLETE: list(complete),
                       RUNS_DIGEST: runs_digest(out)}, indent=2, sort_keys=True, ensure_ascii=False)
    with atomic_file(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


def runs_digest(out: Path | str) -> str:
    """sha256 of the records' runs.parquet, as report.json names the runs its ``complete`` list
    was made from (empty when there is none)."""
    path = Path(out) / RUNS
    return sha256_file(path) if path.is_file() else ""


def check_report_inputs(out: Path | str) -> dict[str, Any]:
    """report.json of the records in ``out``, refused unless it was written for the runs.parquet
    there now (a publish or forget cut short between the two leaves them apart, and the list of
    complete datasets could then name one whose trainings are not all in)."""
    inputs = read_json(Path(out) / REPORT_INPUTS, "publish the records again")
    if inputs.get(RUNS_DIGEST) != runs_digest(out):
        raise ValueError(f"{Path(out) / REPORT_INPUTS} was not written for the {RUNS} beside it (a publish or "
                         "forget cut short?): publish again (python -m kan publish <results>; an empty results "
                         "folder re-derives it from the records alone)")
    return inputs


def _kept_dataset_deviations(previous: Path, deviations: Sequence[str], datasets: Sequence[str]) -> list[str]:
    """``deviations`` with the dataset deviations ("<family>/<name>: ...") of an earlier publish
    for datasets these do not cover (results folders that each hold some of the datasets add
    up; a dataset read now has only its current lines, and one no longer in ``datasets``, the
    profile's, none): first the others, then the dataset ones in the order of ``datasets``, as
    the pipeline's report lists them, whichever folder was published last."""
    earlier = json.loads(previous.read_text(encoding="utf-8")).get("deviations", []) if previous.is_file() else []
    read_now = {_dataset_of(d) for d in deviations if DATASET_DEVIATION.match(d)}
    rank = {name: position for position, name in enumerate(datasets)}
    kept = [d for d in earlier if DATASET_DEVIATION.match(d) and _dataset_of(d) not in read_now
            and (not rank or _dataset_of(d) in rank)]
    found = list(dict.fromkeys([*deviations, *kept]))
    per_dataset = [d for d in found if DATASET_DEVIATION.match(d)]
    per_dataset.sort(key=lambda d: rank.get(_dataset_of(d), len(rank)))  # stable: a dataset's own order kept
    return [d for d in found if not DATASET_DEVIATION.match(d)] + per_dataset


def _dataset_of(deviation: str) -> str:
    return deviation.split(": ", 1)[0]


def is_current(record: Mapping[str, Any], science: str | None = None) -> bool:
    """True when the record was made by code that computes what this code computes on the
    record's machine kind (same code fingerprint). A placeholder fingerprint (no ci values
    recorded for that kind, or none at hand) ties the record to no code, so it is never
    current: record the kind's values first (``make ci-expected`` on such a machine)."""
    machine, fingerprint = record.get("machine") or "", record.get(FINGERPRINT)
    return bool(machine) and fingerprint not in PLACEHOLDERS and fingerprint == code_fingerprint(machine, science)


def published_runs(out: Path | str) -> dict[str, dict[str, Any]]:
    """run_id -> record of the runs published in ``out`` (empty when there are none yet)."""
    runs = _read(Path(out) / RUNS)
    return {} if runs is None else {r["run_id"]: r for r in runs.to_dict("records")}
