"""Train one chunk of trainings in one process and write every run's files.

A chunk's trainings share a dataset and training options, so they advance in lockstep: each
grid phase is one :func:`kan.batched.fit_many` call over every live model (it stacks the
compatible ones where that is faster), and after each phase every KAN writes the run of that phase; an MLP writes
its single run after the last phase, and keeps its state after each earlier one in a hidden
sibling of that run's folder (:func:`checkpoint_dir`). Training phase by phase is the same as one call with the
whole schedule (the optimizer restarts at every phase either way; with minibatches, each phase
restarts the minibatch order), except for the two options that look across steps: ``eval_every``
counts steps from each phase's start, and ``stop_on_test_rise`` compares records within a phase
(a rise at a grid switch is not seen; no profile sets either). A training counts as finished once the runs of all its phases are
on disk and still count (:func:`currency`: same data, code that computes the same numbers); a
rerun after a killed job skips those, and a KAN or MLP killed part-way goes on after its last
finished phase (:func:`resumed_state`: its model and history are in that phase's run, or the
MLP's checkpoint), with the same results as an uninterrupted training; on another kind of
machine than the one that finished that phase, it starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence

import torch
from torch import Tensor, nn

from kan import KAN, MLP, load_model
from kan.batched import fit_many
from kan.data import definition_digest, read_dataset, to_tensors
from kan.experiments.pruning import prune_model, sparsify_config
from kan.experiments.sweep import Stage, Training, finishing_runs
from kan.records.provenance import DATA_DEFINITION, FINGERPRINT, machine_kind, rerun_fingerprint
from kan.records.runfiles import checked_model, is_finished, read_history, read_metrics, run_dir, update_metrics, write_run
from kan.train import TrainConfig

log = logging.getLogger(__name__)
DATA_DIGEST = "data_digest"  # the record key of data_digest()
CHECKPOINT_SUFFIX, PHASES_DONE = ".phases", "phases_done"  # an MLP's checkpoint folder and its record key


@dataclass
class _State:
    """A training in flight: its model, the history so far and how it is going."""

    training: Training
    model: nn.Module
    initial_shape: list[int]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    status: str = "ok"
    message: str = "finished"
    pruned_at_step: int | None = None
    phases_done: int = 0  # grid phases already on disk when the training was resumed

    @property
    def active(self) -> bool:
        return self.status == "ok"


def shape_text(width: Sequence[int]) -> str:
    """A shape as a compact JSON list, e.g. ``"[2,5,1]"``."""
    return "[" + ",".join(str(int(w)) for w in width) + "]"


def model_width(training: Training, meta: Mapping[str, Any]) -> list[int]:
    """The full shape: the dataset's paper shape, or inputs + hidden + outputs."""
    if training.model["hidden"] == "paper":
        return list(meta["paper_shape"])
    n_out = meta["n_classes"] if meta["task"] == "classification" else len(meta["targets"])
    return [len(meta["inputs"]), *training.model["hidden"], n_out]


def build_model(training: Training, meta: Mapping[str, Any]) -> nn.Module:
    """A freshly initialised model for ``training`` on a dataset described by ``meta``."""
    width = model_width(training, meta)
    grid = training.train["grid_schedule"][0]
    if training.kind == "kan":
        return KAN(width, num_intervals=grid, order=training.model["order"], seed=training.seed, dtype=training.dtype)
    return MLP(width, activation=training.model["activation"], seed=training.seed, dtype=training.dtype)


def _run_phase(states: list[_State], data: Mapping[str, Tensor], configs: Sequence[TrainConfig]) -> None:
    results = fit_many([s.model for s in states], [data] * len(states), list(configs))
    for state, result in zip(states, results):
        offset = state.history[-1]["step"] if state.history else 0.0
        state.history += [{**record, "step": record["step"] + offset} for record in result.history]
        state.seconds += result.seconds
        state.cpu_seconds += result.cpu_seconds
        if result.status != "ok":
            state.status, state.message = result.status, result.message


def _sparsify_and_prune(states: list[_State], data: Mapping[str, Tensor]) -> None:
    _run_phase(states, data, [sparsify_config(s.training.train, s.training.prune["lamb"]) for s in states])
    for state in [s for s in states if s.active]:
        try:
            state.model = prune_model(state.model, data["train_input"], state.training.prune["threshold"])
        except (ValueError, RuntimeError) as error:
            state.status, state.message = "failed", f"pruning failed: {error}"
        state.pruned_at_step = int(state.history[-1]["step"]) if state.history else 0


def metrics_record(state: _State, stage: Stage, extra: Mapping[str, Any]) -> dict[str, Any]:
    """metrics.json of one run: the runs-table columns, then provenance and the full config."""
    training, model = state.training, state.model
    final = state.history[-1] if state.history else {}
    nan = float("nan")
    return {
        "run_id": stage.run_id, "experiment": training.experiment, "family": training.family,
        "dataset": training.dataset, "model": training.kind, "variant": training.variant,
        "shape": shape_text(model.width), "initial_shape": shape_text(state.initial_shape),
        "depth": len(model.width) - 1, "width": max(state.initial_shape[1:-1], default=0),
        "activation": training.model.get("activation", ""),
        "lamb": training.prune["lamb"] if training.prune else 0.0, "seed": training.seed,
        "grid": stage.grid, "order": training.model.get("order", 0), "n_params": model.num_parameters(),
        "steps": int(final.get("step", 0)), "train_rmse": final.get("train_rmse", nan),
        "test_rmse": final.get("test_rmse", nan), "test_accuracy": final.get("test_accuracy", nan),
        "status": state.status, "seconds": state.seconds, "cpu_seconds": state.cpu_seconds,
        "finished_at": time.time(),
        "message": state.message, "phases": stage.phases, "final_stage": stage == training.stages[-1],
        "training_id": training.stages[-1].run_id, "pruned_at_step": state.pruned_at_step,
        "config": training.identity(stage.phases), **extra,
    }


def _write(state: _State, stage: Stage, results: Path, extra: Mapping[str, Any]) -> None:
    directory = run_dir(results, state.training.experiment, state.training.kind, stage.run_id)
    write_run(directory, metrics_record(state, stage, extra), state.history, state.model)


def checkpoint_dir(results: Path, training: Training) -> Path:
    """Where an MLP training in flight keeps its state after each finished phase but the last: a
    hidden sibling of its run folder (run listings and publishing skip hidden folders), removed
    once the run is written."""
    final = run_dir(results, training.experiment, training.kind, training.stages[0].run_id)
    return final.with_name(f".{final.name}{CHECKPOINT_SUFFIX}")


def _resumable(record: Mapping[str, Any], counts: Currency | None, machine: str) -> bool:
    """Whether a training can go on from the phase ``record`` finished: it counts, ended well and was
    computed on this ``machine`` kind (phases of two kinds would be recorded as of one, and the
    training would retrain to other numbers on either; from another kind it starts afresh)."""
    return ((counts is None or counts(record)) and record["status"] == "ok"
            and (record.get("machine") or machine) == machine)


def _resumed_mlp(training: Training, results: Path, counts: Currency | None, machine: str) -> _State | None:
    """An MLP training as its last checkpoint left it (:func:`checkpoint_dir`), if there is one
    that is :func:`_resumable`; else None."""
    directory = checkpoint_dir(results, training)
    if not is_finished(directory):
        return None
    record = read_metrics(directory)
    if not _resumable(record, counts, machine):
        return None
    return _State(training, load_run_model(directory), json.loads(record["initial_shape"]),
                  read_history(directory).to_dict("records"), record["seconds"], record.get("cpu_seconds", 0.0),
                  phases_done=record[PHASES_DONE])


def resumed_state(training: Training, results: Path, counts: Currency | None = None,
                  machine: str | None = None) -> _State | None:
    """A training as its last finished grid phase left it: a KAN from the run folders of its first
    phases (all on disk and counted by ``counts``; a finished phase's run holds the model and the
    whole history so far), an MLP from its checkpoint; None when no phase is there, its last phase
    is (nothing to resume) or the phase was computed on another kind of machine than ``machine``
    (default: this one's), so that no record mixes the numbers of two kinds."""
    machine = machine or machine_kind()
    if training.kind == "mlp":
        return _resumed_mlp(training, results, counts, machine)
    records = _records(training, results, counts)
    done = 0
    while done < len(training.stages) and training.stages[done].run_id in records:
        done += 1
    finished = [records[stage.run_id] for stage in training.stages[:done]]
    if training.kind != "kan" or not done or done == len(training.stages) or not all(
            _resumable(record, None, machine) for record in finished):
        return None
    last = finished[-1]
    directory = run_dir(results, training.experiment, training.kind, last["run_id"])
    history = read_history(directory).to_dict("records")
    return _State(training, load_run_model(directory), json.loads(last["initial_shape"]), history,
                  last["seconds"], last.get("cpu_seconds", 0.0), pruned_at_step=last.get("pruned_at_step"),
                  phases_done=done)


def train_together(trainings: Sequence[Training], data: Mapping[str, Tensor], meta: Mapping[str, Any],
                   results: Path, extra: Mapping[str, Any], resumed: Mapping[str, _State] | None = None) -> None:
    """Train trainings that share a dataset and training options in lockstep; write their runs.
    ``resumed`` maps a training's last run id to its :func:`resumed_state`: it goes on from there."""
    train = trainings[0].train
    if any(t.train != train for t in trainings):
        raise ValueError("trainings trained together must share their training options")
    resumed = resumed or {}
    states = []
    for training in trainings:
        state = resumed.get(training.stages[-1].run_id)
        if state is None:
            model = build_model(training, meta)
            state = _State(training, model, list(model.width))
        states.append(state)
    pruned = [s for s in states if s.training.prune and not s.phases_done]
    if pruned:
        _sparsify_and_prune(pruned, data)
        for state in [s for s in pruned if not s.active]:
            _write(state, state.training.stages[0], results, extra)
    schedule = train["grid_schedule"]
    for phase, grid in enumerate(schedule):
        live = [s for s in states if s.active and s.phases_done <= phase]
        if not live:
            continue
        _run_phase(live, data, [TrainConfig.from_dict({**train, "grid_schedule": [grid]})] * len(live))
        for state in live:
            if state.training.kind == "kan":
                _write(state, state.training.stages[phase], results, extra)
            elif phase == len(schedule) - 1 or not state.active:
                _write(state, state.training.stages[0], results, extra)
                shutil.rmtree(checkpoint_dir(results, state.training), ignore_errors=True)
            else:  # an MLP between phases: a kill loses at most the phase in progress
                record = {**metrics_record(state, state.training.stages[0], extra), PHASES_DONE: phase + 1}
                write_run(checkpoint_dir(results, state.training), record, state.history, state.model)


Currency = Callable[[Mapping[str, Any]], bool]  # whether a run record still counts


def currency(extra: Mapping[str, Any], digest: str) -> Currency:
    """Which records count for a chunk whose runs get provenance ``extra`` and that trains on the
    data of ``digest`` (:func:`data_digest`): a record made from other data is stale; with a code
    fingerprint in ``extra``, so is one whose fingerprint is not what the code computes on the
    record's machine kind (``extra``'s fingerprint on this kind, :func:`rerun_fingerprint` of another).
    Records from before data digests were kept count as made from this data."""
    fingerprint = extra.get(FINGERPRINT)
    here = extra.get("machine") or machine_kind()

    def counts(record: Mapping[str, Any]) -> bool:
        if record.get(DATA_DIGEST, digest) != digest:
            return False
        if fingerprint is None:
            return True
        machine = record.get("machine") or here
        return record.get(FINGERPRINT) == (fingerprint if machine == here else rerun_fingerprint(machine))

    return counts


def data_digest(data: Mapping[str, Tensor]) -> str:
    """16 hex digits naming the content of a training's data (every split, as the tensors it trains on)."""
    digest = hashlib.sha256()
    for key in sorted(data):
        tensor = data[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{list(tensor.shape)}\n".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:16]


def _drop_other_kinds(training: Training, results: Path, machine: str) -> None:
    """Remove the run folders of ``training`` that another machine kind finished: it starts afresh
    here, and a phase it does not reach this time must not keep the other kind's record."""
    for stage in training.stages:
        directory = run_dir(results, training.experiment, training.kind, stage.run_id)
        if is_finished(directory) and (read_metrics(directory).get("machine") or machine) != machine:
            shutil.rmtree(directory)


def _records(training: Training, results: Path, counts: Currency | None) -> dict[str, Mapping[str, Any]]:
    """run id -> record of the training's finished run folders that count."""
    dirs = (run_dir(results, training.experiment, training.kind, s.run_id) for s in training.stages)
    found = (read_metrics(d) for d in dirs if is_finished(d))
    return {r["run_id"]: r for r in found if counts is None or counts(r)}


def is_done(training: Training, results: Path, counts: Currency | None = None) -> bool:
    """Finished: a run that finishes it (:func:`kan.experiments.sweep.finishing_runs`) and the
    runs of every phase before that one are on disk; with ``counts`` (:func:`currency`), only
    records it accepts (the others are stale, and the training is trained again)."""
    return bool(finishing_runs(training, _records(training, results, counts)))


def label_stages(training: Training, results: Path, counts: Currency | None = None,
                 definition: str | None = None) -> list[str]:
    """Make the records of the training's finished runs (those ``counts`` accepts) name it as the
    current plan has it: ``training_id`` its last stage's run id, ``final_stage`` true for that
    stage only. A run recorded as the end of a shorter grid schedule is an earlier phase once the
    schedule grows, and the end again when it shrinks back. With ``definition`` (the
    :func:`kan.data.definition_digest` of the data ``counts`` accepts runs of), the records name it
    too: records written before runs carried it get it. Returns the run ids relabelled."""
    records, last, relabelled = _records(training, results, counts), training.stages[-1].run_id, []
    for stage in training.stages:
        labels = {"training_id": last, "final_stage": stage.run_id == last}
        labels |= {DATA_DEFINITION: definition} if definition is not None else {}
        record = records.get(stage.run_id)
        if record is not None and any(record.get(key) != value for key, value in labels.items()):
            update_metrics(run_dir(results, training.experiment, training.kind, stage.run_id), labels)
            relabelled.append(stage.run_id)
    return relabelled


def existing_runs(trainings: Sequence[Training], results: Path, counts: Currency | None = None) -> list[Path]:
    """Run folders of ``trainings`` that exist on disk (and that ``counts`` accepts)."""
    return [run_dir(results, t.experiment, t.kind, run_id) for t in trainings for run_id in _records(t, results, counts)]


def load_dataset(directory: Path | str, dtype: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors (C-contiguous, as the batched kernels expect) and meta of a dataset folder."""
    generated = read_dataset(directory)
    tensors = to_tensors(generated, dtype=getattr(torch, dtype))
    return {key: value.contiguous() for key, value in tensors.items()}, generated.meta


def load_run_model(directory: Path | str) -> KAN | MLP:
    """The model of a run folder, its model.pt checked against the digest in its metrics.json
    (:func:`kan.records.runfiles.checked_model`)."""
    return load_model(checked_model(directory))


def train_chunk(trainings: Sequence[Training], dataset_dirs: Mapping[tuple[str, str], Path | str],
                results: Path | str, extra: Mapping[str, Any], done_elsewhere: Collection[str] = ()) -> dict[str, Any]:
    """Train every unfinished training of a chunk; return a manifest of its runs.

    ``dataset_dirs`` maps (family, name) to the generated dataset folder; ``extra`` is
    merged into every metrics.json (provenance: git commit, profile, code fingerprint), with the
    digest of the data and of its definition (:func:`kan.data.definition_digest`). Runs that no
    longer count (:func:`currency`: other data, or code that computes other numbers) are trained
    again and left out of the manifest. Trainings whose id
    (their last stage's run id) is in ``done_elsewhere`` have current published records
    (:func:`kan.experiments.progress.current_trainings`): they are neither trained nor listed.
    The records of the others' runs name their training as this chunk plans it (:func:`label_stages`).
    """
    results = Path(results)
    first = trainings[0]
    if any((t.family, t.dataset, t.dtype) != (first.family, first.dataset, first.dtype) for t in trainings):
        raise ValueError("a chunk must hold trainings of one dataset and dtype")
    held = [t for t in trainings if t.stages[-1].run_id not in done_elsewhere]
    if not held:
        return _manifest(trainings, held, [], [])
    data, meta = load_dataset(dataset_dirs[(first.family, first.dataset)], first.dtype)
    digest, definition = data_digest(data), definition_digest(meta)
    counts = currency(extra, digest)
    todo = [t for t in held if not is_done(t, results, counts)]
    if todo:
        machine = extra.get("machine") or machine_kind()
        resumed = {t.stages[-1].run_id: s for t in todo
                   if (s := resumed_state(t, results, counts, machine)) is not None}
        for training in (t for t in todo if t.stages[-1].run_id not in resumed):
            _drop_other_kinds(training, results, machine)
        log.info("training %d of %d trainings on %s/%s (%d resumed after their last finished grid phase, %d published)",
                 len(todo), len(trainings), first.family, first.dataset, len(resumed), len(trainings) - len(held))
        train_together(todo, data, meta, results, {**extra, DATA_DIGEST: digest, DATA_DEFINITION: definition}, resumed)
    for training in held:
        label_stages(training, results, counts, definition)
    return _manifest(trainings, held, todo, existing_runs(held, results, counts))


def _manifest(trainings: Sequence[Training], held: Sequence[Training], trained: Sequence[Training],
              runs: Sequence[Path]) -> dict[str, Any]:
    """A chunk's manifest: how many trainings it has, trained now and left to the published
    records (those not ``held``), and the run folders of the held ones."""
    return {"trainings": len(trainings), "trained": len(trained), "published": len(trainings) - len(held),
            "runs": [str(d) for d in runs]}
