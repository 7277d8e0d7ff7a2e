"""The science jobs: the datasets each science experiment reads, and running one of them
with its finished stages kept for a resume (see :mod:`kan.science.registry`)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Mapping

from kan.records.science_outputs import FIGURES
from kan.science import registry
from kan.science.stages import single_threaded

log = logging.getLogger(__name__)


def science_requests(settings: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Per configured science experiment, the datasets it reads (kan.science.registry.datasets)."""
    if not settings["science"]:
        return {}
    return {name: registry.datasets(name, options) for name, options in settings["science"].items()}


def run_science(name: str, settings: Mapping[str, Any], out_dir: Path | str, figures_dir: Path | str, profile: str,
                datasets: Mapping[str, str] | None = None, workers: int = 1) -> None:
    """Run science experiment ``name`` into ``out_dir`` (:func:`kan.science.registry.run_recorded`)
    on the dataset folders ``datasets`` ("<family>/<name>" -> folder; None: generated in memory)
    and copy its figures to ``figures_dir`` for the reports. A resumable experiment keeps its
    finished stages under :func:`science_partial_dir` until it is done. The job's ``workers`` cores
    are processes that compute its independent stages, each with one thread, as the experiment
    itself runs: the numbers are those of a one-core job."""
    with single_threaded():
        summary = registry.run_recorded(name, settings, out_dir, profile, datasets, science_partial_dir(out_dir), workers)
    log.info("science %s: %s", name, summary)
    Path(figures_dir).mkdir(parents=True, exist_ok=True)
    for figure in sorted((Path(out_dir) / FIGURES).glob("*.png")):
        shutil.copy2(figure, Path(figures_dir) / figure.name)


def science_partial_dir(out_dir: Path | str) -> Path:
    """Where the experiment writing ``<results>/science/<name>`` keeps its finished stages:
    ``<results>/partial/science/<name>``, outside the job's output, which Snakemake deletes before
    it reruns a job."""
    out_dir = Path(out_dir)
    if out_dir.parent.name != "science" or len(out_dir.parts) < 3:
        raise ValueError(f"a science experiment writes <results>/science/<name>, got {out_dir}")
    return out_dir.parents[1] / "partial" / "science" / out_dir.name
