"""The science experiments of the paper (§3.4–4.4) behind one contract for the pipeline:
every registered experiment has ``run(settings, out_dir) -> summary``, which builds its options
from ``settings`` (a config mapping; unknown keys are a ValueError naming key and experiment),
runs it and writes ``out_dir/{tables,figures}/`` and ``out_dir/summary.json``. Experiments that
read datasets (knots, localization) name them with ``inputs(settings)``; the pipeline generates
those folders and passes them as ``run(settings, out_dir, folders)``, a library call without
folders generates the same data in memory. The long experiments (``resumable``: PDE, knots) keep
their finished stages (:class:`kan.science.stages.Stages`) while they run, so that a killed run
goes on after its last finished stage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from kan.data import DatasetRequest
from kan.data.synthetic import TASKS as SYNTHETIC_TASKS
from kan.records.ids import config_id
from kan.records.provenance import (FINGERPRINT, PLACEHOLDERS, UNKNOWN, code_fingerprint, git_commit, machine_kind,
                                    source_digest)
from kan.records.science_outputs import write_run_record
from kan.science import continual, interpretability, localization, pde, runners, unsupervised
from kan.science.options import build_options, resolved
from kan.science.stages import Stages

Runner = Callable[..., dict[str, float]]  # (settings, out_dir[, folders]) -> summary
Inputs = Callable[[Mapping[str, Any]], list[DatasetRequest]]  # settings -> the datasets the runner reads


def _no_inputs(settings: Mapping[str, Any]) -> list[DatasetRequest]:
    """An experiment that reads no datasets (it makes its own samples)."""
    return []


@dataclass(frozen=True)
class ScienceExperiment:
    """A registered experiment: where it is in the paper, what it runs on (MLflow tags), the
    option dataclasses its settings are checked against, its runner and the datasets it reads."""

    section: str
    family: str
    dataset: str
    models: str
    options: tuple[type, ...]
    run: Runner
    inputs: Inputs = _no_inputs
    resumable: bool = False  # its runner takes ``stages`` (kan.science.stages.Stages)
    deviations: tuple[str, ...] = ()  # where its code departs from the paper or fills in what it leaves open


def _adapted(name: str, section: str, family: str, dataset: str, models: str, options: tuple[type, ...],
             runner: Runner, inputs: Callable[..., list[DatasetRequest]] | None = None,
             resumable: bool = False, deviations: tuple[str, ...] = ()) -> tuple[str, ScienceExperiment]:
    """``(name, experiment)`` whose runner builds the options and calls ``runner(*options, out_dir)``,
    or ``runner(*options, out_dir, folders)`` when folders are given, passing on keywords (``stages``
    for a ``resumable`` one); ``inputs(*options)``: the datasets it reads."""
    def run(settings: Mapping[str, Any], out_dir: Path, folders: runners.Folders | None = None,
            **extra: Any) -> dict[str, float]:
        built = build_options(name, options, settings)
        return runner(*built, Path(out_dir), **extra) if folders is None else runner(*built, Path(out_dir), folders, **extra)

    def requests(settings: Mapping[str, Any]) -> list[DatasetRequest]:
        return inputs(*build_options(name, options, settings)) if inputs else []

    return name, ScienceExperiment(section, family, dataset, models, options, run, requests, resumable, deviations)


def _deviations(name: str, section: str, method: tuple[str, ...], *tasks: str) -> tuple[str, ...]:
    """The report's lines for experiment ``name``: its method's ``method`` deviations, then those
    of the synthetic ``tasks`` it samples itself, named as the report names a dataset's."""
    return (*(f"{name} (§{section}): {text}" for text in method),
            *(f"synthetic/{task}: {text}" for task in tasks for text in SYNTHETIC_TASKS[task].deviations))


REGISTRY: dict[str, ScienceExperiment] = dict([
    _adapted("pde", "3.4", "pde", "poisson", "kan,mlp", (runners.PDEConfig,), runners.run_pde, resumable=True,
             deviations=_deviations("pde", "3.4", pde.DEVIATIONS)),
    _adapted("continual", "3.5", "synthetic", "gaussian_peaks", "kan,mlp", (runners.ContinualConfig,),
             runners.run_continual_learning,
             deviations=_deviations("continual", "3.5", continual.DEVIATIONS, "gaussian_peaks")),
    ("interpretability", ScienceExperiment(
        "4.1", "synthetic", "interpretability tasks", "kan", (interpretability.InterpretabilityConfig,),
        interpretability.run_experiment,
        deviations=_deviations("interpretability", "4.1", interpretability.DEVIATIONS,
                               *dict.fromkeys(task.dataset for task in interpretability.TASKS.values())))),
    _adapted("unsupervised", "4.2", "synthetic", "unsupervised_6var", "kan", (runners.DiscoveryConfig, runners.DiscoveryData),
             runners.run_unsupervised,
             deviations=_deviations("unsupervised", "4.2", unsupervised.DEVIATIONS, "unsupervised_6var")),
    _adapted("knots", "4.3", "knot", "signature", "kan,mlp", (runners.KnotConfig, runners.KnotSource),
             runners.run_knot_study, runners.knot_datasets, resumable=True),
    _adapted("localization", "4.4", "anderson", "mosaic,gaam,maam", "kan", (runners.LocalizationConfig, runners.Systems),
             runners.run_mobility_edges, runners.localization_datasets,
             deviations=_deviations("localization", "4.4", localization.DEVIATIONS)),
])


def science_deviations(names: Iterable[str]) -> list[str]:
    """Where the science experiments ``names`` depart from the paper in their code (a profile's own
    choices, such as sizes and budgets, are in its config's ``report.deviations``)."""
    return [text for name in names for text in experiment(name).deviations]


def experiment(name: str) -> ScienceExperiment:
    """The registered experiment ``name``; ValueError listing the valid names."""
    if name not in REGISTRY:
        raise ValueError(f"unknown science experiment '{name}'; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def resolve_settings(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of ``name`` with its value (defaults filled in); ValueError for a bad key or value."""
    return resolved(build_options(name, experiment(name).options, settings))


def datasets(name: str, settings: Mapping[str, Any]) -> list[DatasetRequest]:
    """The datasets science experiment ``name`` reads with ``settings`` (none for most)."""
    return experiment(name).inputs(settings)


def run(name: str, settings: Mapping[str, Any], out_dir: Path | str,
        folders: runners.Folders | None = None, stages: Stages | None = None) -> dict[str, float]:
    """Run science experiment ``name`` with ``settings``, writing into ``out_dir``; its summary.
    ``folders`` ("<family>/<name>" -> dataset folder) must hold exactly the :func:`datasets` it
    reads; without them (None or empty) the data are generated in memory. ``stages`` keeps the
    finished stages of a resumable experiment (ignored by the others)."""
    entry = experiment(name)
    extra = {"stages": stages} if entry.resumable and stages is not None else {}
    if not folders:
        return entry.run(settings, Path(out_dir), **extra)
    wanted = sorted(r.key for r in entry.inputs(settings))
    if sorted(folders) != wanted:
        raise ValueError(f"science experiment '{name}' reads the datasets {wanted or 'none'}, "
                         f"got folders for {sorted(folders)}")
    return entry.run(settings, Path(out_dir), folders, **extra)


def stage_folder(name: str, settings: Mapping[str, Any], partial: Path | str) -> Path:
    """The folder below ``partial`` where a run of ``name`` with ``settings`` keeps its finished
    stages: named by the resolved settings, the code (:func:`stage_code`) and the machine kind, so
    a run with other settings, other numbers or on another kind never reads them."""
    key = {"science": name, "settings": resolve_settings(name, settings), "code": stage_code(name),
           "machine": machine_kind()}
    return Path(partial) / config_id(key)


def stage_code(name: str) -> str:
    """What identifies the code behind a science experiment's kept stages: its recorded code
    fingerprint (:func:`code_fingerprint`, which follows the ci numbers, so edits that leave them
    alone keep the stages) at a clean git checkout on a machine kind with recorded values;
    otherwise the digest of the source (:func:`source_digest`: any edit starts afresh), since
    the fingerprint cannot see uncommitted edits nor numbers nobody recorded."""
    fingerprint, commit = code_fingerprint(science=name), git_commit()
    if commit != UNKNOWN and not commit.endswith("-dirty") and fingerprint not in PLACEHOLDERS:
        return f"fingerprint:{fingerprint}"
    return f"source:{source_digest()}"


def run_recorded(name: str, settings: Mapping[str, Any], out_dir: Path | str, profile: str,
                 folders: runners.Folders | None = None, partial: Path | str | None = None,
                 workers: int = 1) -> dict[str, float]:
    """:func:`run`, then ``run.json``: the resolved settings, their config id, the MLflow tags
    (section, data family, dataset, models, profile, git commit), wall and CPU seconds taken.
    With ``partial``, a resumable experiment keeps its finished stages in a folder below it
    (:func:`stage_folder`) and removes it once ``run.json`` is written;
    the times recorded add, for a resumed run, what its kept stages took (not the work a kill lost).
    ``workers`` processes compute its independent stages (:meth:`Stages.run_many`); the CPU time
    recorded includes theirs."""
    entry = experiment(name)
    options = resolve_settings(name, settings)
    fingerprint = code_fingerprint(science=name)
    stages = Stages(stage_folder(name, settings, partial), workers) if partial is not None and entry.resumable else None
    started, cpu = time.perf_counter(), time.process_time()
    summary = run(name, settings, out_dir, folders, stages)
    write_run_record(out_dir, {
        "experiment": name, "config_id": config_id({"science": name, "settings": options}), "settings": options,
        "section": entry.section, "family": entry.family, "dataset": entry.dataset, "model": entry.models,
        "status": "ok", "profile": profile, "git_commit": git_commit(), "machine": machine_kind(),
        FINGERPRINT: fingerprint, "finished_at": time.time(),
        "seconds": time.perf_counter() - started + (stages.restored_seconds if stages else 0.0),
        "cpu_seconds": time.process_time() - cpu + (stages.restored_cpu_seconds + stages.worker_cpu_seconds
                                                     if stages else 0.0),
    })
    if stages is not None:
        stages.clear()
    return summary
