"""The science experiments of the paper (§3.4–4.4) behind one contract for the pipeline:
every registered experiment has ``run(settings, out_dir) -> summary``, which builds its options
from ``settings`` (a config mapping; unknown keys are a ValueError naming key and experiment),
runs it and writes ``out_dir/{tables,figures}/`` and ``out_dir/summary.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from kan.experiments.ids import config_id
from kan.experiments.provenance import git_commit
from kan.science import interpretability, runners
from kan.science.options import build_options, resolved
from kan.science.outputs import write_run_record

Runner = Callable[[Mapping[str, Any], Path], dict[str, float]]


@dataclass(frozen=True)
class ScienceExperiment:
    """A registered experiment: where it is in the paper, what it runs on (MLflow tags), the
    option dataclasses its settings are checked against, and its runner."""

    section: str
    family: str
    dataset: str
    models: str
    options: tuple[type, ...]
    run: Runner


def _adapted(name: str, section: str, family: str, dataset: str, models: str, options: tuple[type, ...],
             runner: Callable[..., dict[str, float]]) -> tuple[str, ScienceExperiment]:
    """``(name, experiment)`` whose runner builds the options and calls ``runner(*options, out_dir)``."""
    def run(settings: Mapping[str, Any], out_dir: Path) -> dict[str, float]:
        return runner(*build_options(name, options, settings), Path(out_dir))

    return name, ScienceExperiment(section, family, dataset, models, options, run)


REGISTRY: dict[str, ScienceExperiment] = dict([
    _adapted("pde", "3.4", "pde", "poisson", "kan,mlp", (runners.PDEConfig,), runners.run_pde),
    _adapted("continual", "3.5", "synthetic", "gaussian_peaks", "kan,mlp", (runners.ContinualConfig,),
             runners.run_continual_learning),
    ("interpretability", ScienceExperiment("4.1", "synthetic", "interpretability tasks", "kan",
                                           (interpretability.InterpretabilityConfig,), interpretability.run_experiment)),
    _adapted("unsupervised", "4.2", "synthetic", "unsupervised_6var", "kan", (runners.DiscoveryConfig, runners.DiscoveryData),
             runners.run_unsupervised),
    _adapted("knots", "4.3", "knot", "signature", "kan,mlp", (runners.KnotConfig, runners.KnotFallback),
             runners.run_knot_study),
    _adapted("localization", "4.4", "anderson", "mosaic,gaam,maam", "kan", (runners.LocalizationConfig, runners.Systems),
             runners.run_mobility_edges),
])


def experiment(name: str) -> ScienceExperiment:
    """The registered experiment ``name``; ValueError listing the valid names."""
    if name not in REGISTRY:
        raise ValueError(f"unknown science experiment '{name}'; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def resolve_settings(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of ``name`` with its value (defaults filled in); ValueError for a bad key or value."""
    return resolved(build_options(name, experiment(name).options, settings))


def run(name: str, settings: Mapping[str, Any], out_dir: Path | str) -> dict[str, float]:
    """Run science experiment ``name`` with ``settings``, writing into ``out_dir``; its summary."""
    return experiment(name).run(settings, Path(out_dir))


def run_recorded(name: str, settings: Mapping[str, Any], out_dir: Path | str, profile: str) -> dict[str, float]:
    """:func:`run`, then ``run.json``: the resolved settings, their config id, the MLflow tags
    (section, data family, dataset, models, profile, git commit), wall and CPU seconds taken."""
    entry = experiment(name)
    options = resolve_settings(name, settings)
    started, cpu = time.perf_counter(), time.process_time()
    summary = run(name, settings, out_dir)
    write_run_record(out_dir, {
        "experiment": name, "config_id": config_id({"science": name, "settings": options}), "settings": options,
        "section": entry.section, "family": entry.family, "dataset": entry.dataset, "model": entry.models,
        "status": "ok", "profile": profile, "git_commit": git_commit(), "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
    })
    return summary
