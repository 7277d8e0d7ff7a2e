"""Would more steps for the human-constructed KANs raise the default profile's fidelity?

The human shapes are cheap (width 1-4) and six of the default profile's Feynman misses are
theirs, so they are where extra budget looks best spent. This probe trains every equation's human
shape on the pipeline's dataset with the default profile's grids (G = 3, 5, 10, 20) at the
default's 30 L-BFGS steps per G and at the paper's 200, and prints each best test RMSE at the end
of a phase over the model seeds (the report's selection) as a ratio to the paper's, with how many
lie within the block's tolerance (×10).

Run: ``.venv/bin/python benchmarks/probe_human_budget.py [--steps 30 200] [--seeds 0 1 2]``.
1 thread, about 5 CPU minutes per seed.
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

from bench_sweep import feynman_data
from kan import KAN
from kan.data.feynman import TASKS
from kan.records.provenance import REFERENCE
from kan.reporting.reference import load_reference
from kan.train import TrainConfig, fit

GRIDS = (3, 5, 10, 20)


def best_test_rmse(name: str, steps: int, grids: tuple[int, ...] = GRIDS, data: dict[str, Tensor] | None = None,
                   seed: int = 0) -> float:
    """The lowest test RMSE at the end of a grid phase (the pipeline records phase ends) of the
    human shape trained with model seed ``seed`` on ``data`` (default: the pipeline's dataset)."""
    model = KAN(list(TASKS[name].shape), grids[0], seed=seed, dtype=torch.float64)
    data = feynman_data(name) if data is None else data
    history = fit(model, data, TrainConfig(steps=steps, grid_schedule=grids)).history
    phase_ends = {record["grid"]: record["test_rmse"] for record in history if record.get("test_rmse") is not None}
    return min(phase_ends.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[30, 200])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="model seeds; the best over them counts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    feynman = load_reference(REFERENCE / "paper.yaml")["feynman"]
    factor = feynman["tolerance_factor"]
    within = dict.fromkeys(args.steps, 0)
    print(f"## Human-shape KANs, G {GRIDS}, model seeds {args.seeds}: best test RMSE / paper's\n")
    print("| dataset | paper | " + " | ".join(f"{s} steps per G" for s in args.steps) + " |")
    print("|---|---|" + "---|" * len(args.steps))
    for row in feynman["rows"]:
        ratios = {steps: min(best_test_rmse(row["dataset"], steps, seed=seed) for seed in args.seeds) / row["human_rmse"]
                  for steps in args.steps}
        for steps, ratio in ratios.items():
            within[steps] += 1 / factor <= ratio <= factor
        cells = " | ".join(f"{ratio:.3g}×" for ratio in ratios.values())
        print(f"| {row['dataset']} | {row['human_rmse']:.2e} | {cells} |", flush=True)
    totals = " | ".join(f"{within[steps]} of {len(feynman['rows'])}" for steps in args.steps)
    print(f"| within ×{factor:g} | | {totals} |")


if __name__ == "__main__":
    main()
