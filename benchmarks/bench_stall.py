"""The stall rule (``TrainConfig.stall_window`` / ``stall_tolerance``) against full grid phases.

For KANs and MLPs on Feynman equations at the paper's budget per phase (200 L-BFGS steps per G),
each model is trained twice from the same initialisation: every step of every phase, and with the
stall rule (a phase ends once its training loss fell by less than ``tolerance`` over ``window``
steps). The table gives the steps actually run, the wall time and the final test RMSE of both, and
their ratios; a lever is worth it when the steps fall a lot and the RMSE ratio stays near 1.

Run: ``.venv/bin/python benchmarks/bench_stall.py`` (``--help`` for options). 1 thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, replace

import torch

from bench_sweep import feynman_data
from kan import KAN, MLP
from kan.train import TrainConfig, fit

DATASETS = ("I.6.20", "I.16.6", "II.38.3")
KAN_SHAPES = ((2, 5, 1), (2, 5, 5, 1))
MLP_SHAPES = ((2, 20, 20, 1),)
SEEDS = (0, 1)


@dataclass
class Pair:
    label: str
    steps: tuple[int, int]  # full, stall rule
    seconds: tuple[float, float]
    rmse: tuple[float, float]


def train_twice(make, data, config: TrainConfig, window: int, tolerance: float) -> tuple[tuple[int, float, float], ...]:
    """(steps run, seconds, final test RMSE) without and with the stall rule, same initial model."""
    out = []
    for rule in (config, replace(config, stall_window=window, stall_tolerance=tolerance)):
        model = make()
        started = time.perf_counter()
        result = fit(model, data, rule)
        out.append((int(result.final["step"]), time.perf_counter() - started, result.final["test_rmse"]))
    return tuple(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="L-BFGS steps per grid phase (default 200, the paper's)")
    parser.add_argument("--grids", type=int, nargs="+", default=[3, 5, 10, 20, 50], help="grid schedule")
    parser.add_argument("--window", type=int, default=10, help="stall window in steps (default 10)")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="relative loss decrease (default 1e-3)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    kan_config = TrainConfig(steps=args.steps, grid_schedule=tuple(args.grids))
    mlp_config = TrainConfig(steps=args.steps * len(args.grids))
    pairs = []
    for name in DATASETS:
        data = feynman_data(name)
        models = [(f"KAN {list(s)}", lambda s=s, seed=seed: KAN(list(s), num_intervals=args.grids[0], seed=seed,
                                                                dtype=torch.float64), kan_config, seed)
                  for s in KAN_SHAPES for seed in SEEDS]
        models += [(f"MLP {list(s)} tanh", lambda s=s, seed=seed: MLP(list(s), activation="tanh", seed=seed,
                                                                      dtype=torch.float64), mlp_config, seed)
                   for s in MLP_SHAPES for seed in SEEDS]
        for label, make, config, seed in models:
            full, stall = train_twice(make, data, config, args.window, args.tolerance)
            pairs.append(Pair(f"{name} {label} seed {seed}", (full[0], stall[0]), (full[1], stall[1]), (full[2], stall[2])))
            print(f"{pairs[-1].label}: steps {full[0]} -> {stall[0]}, RMSE {full[2]:.3e} -> {stall[2]:.3e}", flush=True)
    print(f"\n## Stall rule: window {args.window} steps, tolerance {args.tolerance:g}; {args.steps} steps per G over "
          f"{args.grids} (MLPs: the same total)\n")
    print("| model | steps full | steps stall | seconds full | seconds stall | test RMSE full | test RMSE stall | RMSE ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for p in pairs:
        print(f"| {p.label} | {p.steps[0]} | {p.steps[1]} | {p.seconds[0]:.1f} | {p.seconds[1]:.1f} | {p.rmse[0]:.3e} "
              f"| {p.rmse[1]:.3e} | {p.rmse[1] / p.rmse[0]:.3f} |")
    for kind in ("KAN", "MLP"):
        mine = [p for p in pairs if f" {kind} " in p.label]
        steps = sum(p.steps[1] for p in mine) / sum(p.steps[0] for p in mine)
        seconds = sum(p.seconds[1] for p in mine) / sum(p.seconds[0] for p in mine)
        ratios = [p.rmse[1] / p.rmse[0] for p in mine]
        print(f"\n{kind}s: {steps:.0%} of the steps, {seconds:.0%} of the time; test RMSE ratio median "
              f"{statistics.median(ratios):.3f}, range [{min(ratios):.3f}, {max(ratios):.3f}]")


if __name__ == "__main__":
    main()
