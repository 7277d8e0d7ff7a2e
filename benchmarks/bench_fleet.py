"""CPU cost per model of ``kan.batched.fit_many`` against separate ``kan.train.fit`` calls.

M KANs [2,5,1] (seeds 0..M-1) on exp(sin(πx) + y²), 1000 training points, float64, grid schedule G
= 3, 5 with 20 L-BFGS steps per phase, one torch thread. Three runners, interleaved in each round
so that they see the same machine load: M separate fits, ``fit_many`` as sweeps call it
(``batch="auto"``: on CPU KANs without the sparsity penalty stacked, other models one at a time;
everything stacked on a GPU) and ``fit_many(batch="always")`` (one stacked program trained by the
fleet L-BFGS). Prints each runner's best time: process CPU time on the CPU, wall time
(synchronised) on a CUDA device, which gets its own rows whenever one is present.

Run: ``.venv/bin/python benchmarks/bench_fleet.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Callable, Sequence

import torch
from torch import nn

from kan import KAN
from kan.batched import fit_many
from kan.train import FitResult, TrainConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=6, help="M, the number of models (default 6)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best of each runner counts (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.models} KANs [2,5,1], G = 3, 5 x 20 L-BFGS steps, 1000 points, 1 thread; best of {args.repeats}")
    for device in ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]:
        best = _best_times(torch.device(device), args.models, args.repeats)
        reference = best["separate fits"]
        unit = "CPU s" if device == "cpu" else "wall s"
        for name, seconds in best.items():
            print(f"{device:4s} {name:27s} {seconds:6.2f} {unit}   {seconds / args.models:.3f} s per model   "
                  f"{seconds / reference:.2f}x separate fits")


def _best_times(device: torch.device, count: int, repeats: int) -> dict[str, float]:
    """Each runner's best time over ``repeats`` interleaved rounds on ``device``."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2000, 2, dtype=torch.float64, generator=gen) * 2 - 1
    y = torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:2] ** 2)
    data = {key: value.to(device) for key, value in
            {"train_input": x[:1000], "train_label": y[:1000], "test_input": x[1000:], "test_label": y[1000:]}.items()}
    config = TrainConfig(steps=20, grid_schedule=(3, 5))
    runners: dict[str, Callable[[Sequence[nn.Module]], list[FitResult]]] = {
        "separate fits": lambda models: [fit(model, data, config) for model in models],
        'fit_many (batch="auto")': lambda models: fit_many(models, [data] * count, config),
        'fit_many (batch="always")': lambda models: fit_many(models, [data] * count, config, batch="always"),
    }
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    best = dict.fromkeys(runners, math.inf)
    for _ in range(repeats):
        for name, run in runners.items():
            models = [KAN([2, 5, 1], num_intervals=3, seed=seed, dtype=torch.float64).to(device) for seed in range(count)]
            started = clock()
            run(models)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], clock() - started)
    return best


if __name__ == "__main__":
    main()
