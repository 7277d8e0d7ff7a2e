"""Feynman human-shape KANs: ours against the reference implementation on the same samples.

Several of our Feynman RMSEs lie 10-1000x below the paper's ("ours better" in the report). Is that
our training or the data? This probe trains the paper's human-constructed shape of each named
equation with the paper's schedule (G = 3, 5, 10, 20, 50, 100, 200; 200 L-BFGS steps per G;
model seed 0) on the pipeline's own dataset (1000 train and 1000 test points on our ranges), once
with ``kan.fit`` (the pipeline's protocol: uniform grids) and once with pykan 0.2.8 (its ``fit``
with all defaults, in-phase grid updates included, and ``refine`` between phases). It prints the
best test RMSE over the phases (the report's selection) with its G, and the last phase's, next to
the paper's human-shape RMSE.

Run: ``.venv/bin/python benchmarks/probe_reference_feynman.py [DATASET ...] [--dtype float32]``
(default: III.10.19 I.30.5 I.13.12 II.2.42). 1 thread; pykan is installed into ``PYKAN_SITE`` as for
``make bench``. About 2 minutes per equation for pykan, seconds for ours.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench_core import HERE, PYKAN_SITE, ensure_pykan, run_worker
from bench_sweep import feynman_data
from kan import KAN
from kan.data.feynman import TASKS
from kan.records.provenance import REFERENCE
from kan.reporting.reference import load_reference
from kan.train import TrainConfig, fit

GRIDS = (3, 5, 10, 20, 50, 100, 200)
DEFAULT_DATASETS = ("III.10.19", "I.30.5", "I.13.12", "II.2.42")


def ours(shape: list[int], data: dict[str, torch.Tensor], steps: int) -> list[dict[str, float]]:
    """The test RMSE at the end of each phase of one ``kan.fit``."""
    model = KAN(shape, GRIDS[0], seed=0, dtype=data["train_input"].dtype)
    history = fit(model, data, TrainConfig(steps=steps, grid_schedule=GRIDS)).history
    last = {record["grid"]: record for record in history if record.get("test_rmse") is not None}
    return [{"grid": int(grid), "test_rmse": last[grid]["test_rmse"]} for grid in GRIDS]


def reference(shape: list[int], data: dict[str, torch.Tensor], steps: int, dtype: str) -> list[dict[str, float]]:
    """The same schedule with pykan, in its worker process (pykan is also imported as ``kan``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, **{key: value.numpy() for key, value in data.items()})
        args = ["schedule", f"--data={path}", f"--shape={','.join(map(str, shape))}",
                f"--grids={','.join(map(str, GRIDS))}", f"--steps={steps}", "--seed=0", f"--dtype={dtype}"]
        return run_worker(HERE / "_pykan_worker.py", args, [PYKAN_SITE, HERE])["phases"]


def summary(phases: list[dict[str, float]]) -> str:
    best = min(phases, key=lambda phase: phase["test_rmse"])
    return f"{best['test_rmse']:.2e} (G = {best['grid']}) | {phases[-1]['test_rmse']:.2e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=DEFAULT_DATASETS)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    problem = ensure_pykan()
    if problem:
        raise SystemExit(problem)
    paper = {row["dataset"]: row for row in load_reference(REFERENCE / "paper.yaml")["feynman"]["rows"]}
    print(f"## Human-shape KANs, {args.dtype}, G {GRIDS}, {args.steps} L-BFGS steps per G, model seed 0\n")
    print("| dataset | shape | paper human RMSE | ours: best test RMSE (G) | ours: last | "
          "pykan 0.2.8: best test RMSE (G) | pykan: last |")
    print("|---|---|---|---|---|---|---|")
    for name in args.datasets:
        shape = list(TASKS[name].shape)
        data = {key: value.to(getattr(torch, args.dtype)) for key, value in feynman_data(name).items()}
        print(f"| {name} | {shape} | {paper[name]['human_rmse']:.2e} | {summary(ours(shape, data, args.steps))} | "
              f"{summary(reference(shape, data, args.steps, args.dtype))} |", flush=True)


if __name__ == "__main__":
    main()
