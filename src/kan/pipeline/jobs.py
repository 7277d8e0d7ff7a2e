"""The training job and the plan's helpers: what a profile trains and writes, and the
deviations its report lists. The tracking and science jobs live in
:mod:`kan.pipeline.tracking_jobs` and :mod:`kan.pipeline.science_jobs`, so that a training job
imports neither MLflow's nor the plots' nor the science experiments' modules. The Snakemake
scripts in ``workflow/scripts`` only pass their inputs, outputs and params to these functions.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from kan.data import with_requests
from kan.experiments.progress import current_trainings
from kan.experiments.pruning import DEVIATION
from kan.experiments.runner import train_chunk
from kan.experiments.sweep import Training, datasets_used
from kan.pipeline.joblog import write_json
from kan.records.provenance import FINGERPRINT, git_commit, machine_kind, rerun_fingerprint
from kan.records.publish import DATASET_DEVIATION

log = logging.getLogger(__name__)


def train(trainings: Sequence[Mapping[str, Any]], dataset_dirs: Mapping[str, str], results: Path | str,
          manifest: Path | str, profile: str, published: Path | str | None = None) -> None:
    """Train a chunk (see :func:`kan.experiments.runner.train_chunk`) and write its manifest.

    ``dataset_dirs`` maps ``"<family>/<name>"`` to the dataset folder; trainings with a current
    record in the records folder ``published`` (config key ``published``) are not trained again.
    """
    dirs = {tuple(key.split("/", 1)): Path(path) for key, path in dataset_dirs.items()}
    extra = {"profile": profile, "git_commit": git_commit(), "machine": machine_kind(),
             FINGERPRINT: rerun_fingerprint()}
    chunk = [Training.from_dict(t) for t in trainings]
    outcome = train_chunk(chunk, dirs, results, extra, current_trainings(chunk, published) if published else ())
    log.info("chunk done: %d trainings, %d trained now, %d published, %d runs", outcome["trainings"],
             outcome["trained"], outcome["published"], len(outcome["runs"]))
    write_json(manifest, outcome)


def profile_datasets(trainings: Sequence[Any], requests: Mapping[str, Sequence[Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(family, name) -> {"spec", "seed"} of every dataset folder a profile writes: those its
    trainings use and those its science experiments read (``requests``, see
    :func:`kan.pipeline.science_jobs.science_requests`)."""
    return with_requests(datasets_used(list(trainings)), [r for found in requests.values() for r in found])


def report_deviations(profile_deviations: Sequence[str], dataset_dirs: Sequence[Path | str],
                      science: Sequence[str] = ()) -> list[str]:
    """Every deviation from the paper, once: the profile's, the science experiments' own
    (``science``, :func:`kan.science.registry.science_deviations`), the pruning procedure's,
    those recorded in the datasets' meta.json, then those of the data the science experiments
    sample themselves (where publishing puts dataset lines it has no folder for)."""
    own_data = [line for line in science if DATASET_DEVIATION.match(line)]
    found = [*profile_deviations, *(line for line in science if line not in own_data), DEVIATION]
    for directory in dataset_dirs:
        meta = json.loads((Path(directory) / "meta.json").read_text(encoding="utf-8"))
        found += [f"{meta['family']}/{meta['name']}: {text}" for text in meta.get("deviations", [])]
    return list(dict.fromkeys([*found, *own_data]))
