"""Wall time of a science experiment run with its independent stages in worker processes,
against the same run in one process, at a fraction of the paper's settings.

Each experiment (default: knots and pde, the two long ones) runs at the paper profile's
settings with its training-length knobs scaled to ``--fraction`` (as ``make bench-sweep``
probes them, :func:`kan.science.cost.scaled_settings`), first in one process, then with
``--workers`` processes, as the pipeline's science job runs it
(:func:`kan.pipeline.science_jobs.run_science`; one thread per process). Prints wall and CPU
seconds from each run's ``run.json``, the wall-time ratio, and whether the two summaries agree
bit for bit (they must). Needs as many idle cores as workers.

Run: ``.venv/bin/python benchmarks/bench_science_workers.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

from bench_sweep import PAPER_CONFIG, ROOT
from kan.pipeline.cli import SCHEMA
from kan.pipeline.config import load_config
from kan.pipeline.science_jobs import run_science
from kan.records.science_outputs import read_run_record, read_summary
from kan.science import cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="*", default=["knots", "pde"], help="science experiments (default knots pde)")
    parser.add_argument("--fraction", type=float, default=0.05, help="scale of the training-length knobs (default 0.05)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the parallel run (default 2)")
    args = parser.parse_args()
    science = load_config(PAPER_CONFIG, ROOT / SCHEMA)["science"]
    print(f"paper settings, training-length knobs x {args.fraction}; one thread per process\n")
    print("| experiment | processes | wall s | CPU s | wall vs 1 process | same summary |")
    print("|---|---|---|---|---|---|")
    for name in args.experiments:
        settings = cost.scaled_settings(name, science[name], args.fraction)
        with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
            folders = cost.make_datasets(name, settings, Path(tmp) / "datasets")
            runs = {workers: _run(name, settings, folders, Path(tmp) / f"workers-{workers}", workers)
                    for workers in (1, args.workers)}
        alone = runs[1]
        for workers, (record, summary) in runs.items():
            print(f"| {name} | {workers} | {record['seconds']:.1f} | {record['cpu_seconds']:.1f} | "
                  f"{record['seconds'] / alone[0]['seconds']:.2f} | {'yes' if summary == alone[1] else 'NO'} |")


def _run(name: str, settings: dict, folders: dict[str, Path], root: Path, workers: int) -> tuple[dict, dict]:
    """(run record, summary) of one pipeline-style run of ``name`` below ``root``."""
    out = root / "results" / "science" / name
    run_science(name, settings, out, root / "figures", "bench", {k: str(v) for k, v in folders.items()}, workers)
    return read_run_record(out), read_summary(out)


if __name__ == "__main__":
    main()
