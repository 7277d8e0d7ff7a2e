"""Grid protocol: the pipeline's uniform grids against the reference implementation's sample-adaptive ones.

The pipeline trains on uniform grids and moves them only at a grid switch (``grid_update_every=0``,
``grid_uniform_fraction=1``). The reference implementation's ``fit`` also re-fits the grid to the
samples every 5 steps up to step 50 of each phase, with a grid that is 98% sample quantiles
(``grid_eps = 0.02``). This script trains the same KANs both ways (the paper's grid-extension
setup: exp(sin(πx) + y²), 1000 points, 200 L-BFGS steps per G) and prints the test RMSE at the end
of every phase, the best over the schedule, and the wall time.

With ``--timing`` it instead times one fit per protocol with the compiled layer kernel on and off
(``kan.native.use_native``): thread CPU time, best of ``--repeats`` runs, and the final training
loss of each (equal with the kernel on and off up to rounding).

Run: ``.venv/bin/python benchmarks/bench_grid_protocol.py`` (``--help`` for options). 1 thread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from kan import KAN, native
from kan.data import generate_to_dir, read_dataset, to_tensors
from kan.train import TrainConfig, fit

PROTOCOLS = {
    "uniform (pipeline)": {},
    "adaptive (reference)": {"grid_update_every": 5, "grid_update_until": 50, "grid_uniform_fraction": 0.02},
}


def toy_data(name: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = generate_to_dir("synthetic", name, None, 0, Path(tmp) / name)
        return {k: v.contiguous() for k, v in to_tensors(read_dataset(directory), dtype=dtype).items()}


def timed_fit(shape: list[int], config: TrainConfig, data: dict[str, torch.Tensor], dtype: torch.dtype,
              compiled: bool) -> tuple[float, float]:
    """Thread CPU seconds and final training loss of one fit (model seed 0)."""
    with native.use_native(compiled):
        model = KAN(shape, num_intervals=config.grid_schedule[0], seed=0, dtype=dtype)
        started = time.thread_time()
        result = fit(model, data, config)
        return time.thread_time() - started, result.final["train_loss"]


def timing_table(args: argparse.Namespace, data: dict[str, torch.Tensor], dtype: torch.dtype) -> None:
    """Prints the CPU time of each protocol's fit with the compiled kernel on and off."""
    print(f"\n## Fit CPU time, KAN {args.shape}, {args.dtype}, G {tuple(args.grids)} x {args.steps} L-BFGS steps, "
          f"1 thread, best of {args.repeats}\n")
    print("| protocol | compiled kernel | CPU s | final train loss |")
    print("|---|---|---|---|")
    for protocol, options in PROTOCOLS.items():
        config = TrainConfig(steps=args.steps, grid_schedule=tuple(args.grids), **options)
        for compiled in (True, False):
            runs = [timed_fit(args.shape, config, data, dtype, compiled) for _ in range(args.repeats)]
            label = "on" if compiled else "off"
            print(f"| {protocol} | {label} | {min(r[0] for r in runs):.1f} | {runs[0][1]:.6e} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs="+", default=[2, 5, 1])
    parser.add_argument("--grids", type=int, nargs="+", default=[3, 5, 10, 20, 50])
    parser.add_argument("--steps", type=int, default=200, help="L-BFGS steps per grid phase")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--timing", action="store_true", help="time the fits with the compiled kernel on and off")
    parser.add_argument("--repeats", type=int, default=3, help="--timing: runs per figure (the best counts)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dtype = getattr(torch, args.dtype)
    data = toy_data("exp_sin_sq", dtype)
    if args.timing:
        timing_table(args, data, dtype)
        return
    rows = []
    for protocol, options in PROTOCOLS.items():
        for seed in args.seeds:
            config = TrainConfig(steps=args.steps, grid_schedule=tuple(args.grids), **options)
            started = time.perf_counter()
            result = fit(KAN(args.shape, num_intervals=args.grids[0], seed=seed, dtype=dtype), data, config)
            seconds = time.perf_counter() - started
            ends = {int(h["grid"]): h["test_rmse"] for h in result.history}
            rows.append((protocol, seed, ends, seconds))
            print(protocol, seed, f"{seconds:.0f} s", {g: f"{e:.2e}" for g, e in ends.items()}, flush=True)
    print(f"\n## Grid protocol on exp(sin(πx) + y²), KAN {args.shape}, {args.dtype}, {args.steps} L-BFGS steps per G\n")
    print("| protocol | seed | " + " | ".join(f"G = {g}" for g in args.grids) + " | best | seconds |")
    print("|---|---|" + "---|" * len(args.grids) + "---|---|")
    for protocol, seed, ends, seconds in rows:
        cells = " | ".join(f"{ends[g]:.2e}" for g in args.grids)
        print(f"| {protocol} | {seed} | {cells} | {min(ends.values()):.2e} | {seconds:.0f} |")
    for protocol in PROTOCOLS:
        best = [min(r[2].values()) for r in rows if r[0] == protocol]
        print(f"\n{protocol}: median best test RMSE {statistics.median(best):.2e}")


if __name__ == "__main__":
    main()
