"""Do the reference implementation's Feynman input ranges explain where ours is far below the paper?

The paper gives an input range for I.16.6 only; ours are our own (``kan.data.feynman``). The code
released with the paper (pykan, ``kan/feynman.py``, commit 11984f4) samples *dimensional* versions
of the equations on ranges of its own. Where the table's dimensionless variables map onto those
(a variable kept as it is, or a ratio of two whose ranges exclude 0), the ranges below are the ones
pykan's imply, taken as uniform (a ratio or product of uniform variables is not uniform, so this
is an approximation of pykan's sampling, not a copy). Variables with no such map keep our range;
equations with none (I.12.11, I.15.3x, I.29.16, III.10.19), or whose implied box holds a 0/0
(III.9.52), or that pykan samples exactly as we do (I.6.20), are left out.

For each equation, the human-constructed shape is trained on our box and on the implied one with
the paper's 200 L-BFGS steps per G over G = 3, 5, 10, 20, 50 and model seeds 0, 1, 2; printed is
the best test RMSE at the end of a phase over the seeds (the report's selection) as a ratio to the
paper's human-shape RMSE, and how many lie within the block's tolerance (×10).

Run: ``.venv/bin/python benchmarks/probe_feynman_ranges.py [--only I.30.3 ...]``. 1 thread,
about 30 CPU minutes for all 22 equations.
"""

from __future__ import annotations

import argparse
import math

import torch

from bench_sweep import feynman_data
from kan.data.feynman import TASKS
from kan.records.provenance import REFERENCE
from kan.reporting.reference import load_reference
from probe_human_budget import best_test_rmse

GRIDS = (3, 5, 10, 20, 50)
STEPS = 200
SEEDS = (0, 1, 2)
TAU = 2 * math.pi

# Ranges implied by pykan's kan/feynman.py (11984f4) for the table's variables; "map" says how.
IMPLIED = {
    "I.6.20b": ({"theta": (-1.5, 1.5), "theta1": (-1.5, 1.5)}, "theta, theta1 as in pykan"),
    "I.9.18": ({"b": (-2.0, -0.5), "c": (0.5, 2.0), "d": (-2.0, -0.5), "e": (0.5, 2.0), "f": (-2.0, -0.5)},
               "coordinates over x1"),
    "I.13.12": ({"b": (0.25, 4.0)}, "b = r2/r1"),
    "I.16.6": ({"a": (-0.8, 0.8), "b": (-0.8, 0.8)}, "a = u/c, b = v/c"),
    "I.18.4": ({"a": (0.5, 2.0)}, "a = m2/m1"),
    "I.26.2": ({"n": (0.0, 0.99), "theta2": (0.0, TAU)}, "as in pykan"),
    "I.27.6": ({"a": (0.5, 2.0), "b": (0.25, 2.0)}, "a = n, b = d1/d2"),
    "I.30.3": ({"n": (0.0, 4.0), "theta": (0.2 * TAU, 0.8 * TAU)}, "as in pykan"),
    "I.30.5": ({"a": (-1.0, 1.0), "n": (1.0, 1.5)}, "a = lambda/d, n as in pykan"),
    "I.37.4": ({"a": (0.1, 10.0)}, "a = I2/I1"),
    "I.40.1": ({"n0": (0.0, 1.0)}, "n0 as in pykan"),
    "I.44.4": ({"n": (0.0, 1.0), "a": (0.25, 4.0)}, "a = V2/V1"),
    "I.50.26": ({"a": (0.0, TAU), "alpha": (0.0, 1.0)}, "a = omega t"),
    "II.2.42": ({"b": (0.0, 4.0)}, "b = A/d^2"),
    "II.6.15a": ({"a": (0.0, 2.0), "b": (0.0, 2.0), "c": (0.0, 2.0)}, "a, b, c = x/r, y/r, z/r"),
    "II.11.7": ({"n0": (0.0, 1.0), "a": (-4.0, 4.0)}, "a = p_d Ef/(kb T)"),
    "II.11.27": ({"n": (0.0, 1.0), "alpha": (0.0, 2.0)}, "as in pykan"),
    "II.35.18": ({"n0": (0.0, 1.0), "a": (0.0, 4.0)}, "a = mu B/(kb T)"),
    "II.36.38": ({"a": (0.0, 4.0), "alpha": (0.0, 1.0), "b": (0.0, 32.0)}, "a = mu B/(kb T), b = mu M/(eps c^2 kb T)"),
    "II.38.3": ({"a": (0.0, 1.0)}, "a = x"),
    "III.17.37": ({"alpha": (0.0, 1.0), "beta": (0.0, 1.0)}, "as in pykan"),
}


def best_over_seeds(name: str, spec: dict | None) -> float:
    data = feynman_data(name, spec=spec)
    return min(best_test_rmse(name, STEPS, GRIDS, data, seed) for seed in SEEDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=list(IMPLIED), choices=list(IMPLIED))
    args = parser.parse_args()
    torch.set_num_threads(1)
    feynman = load_reference(REFERENCE / "paper.yaml")["feynman"]
    factor, paper = feynman["tolerance_factor"], {row["dataset"]: row["human_rmse"] for row in feynman["rows"]}
    within = {"ours": 0, "implied": 0}
    print(f"## Human-shape KANs on our box and on pykan's implied one: best test RMSE / paper's "
          f"(G {GRIDS}, {STEPS} steps per G, seeds {SEEDS})\n")
    print("| dataset | implied ranges (map) | paper | ours | implied |")
    print("|---|---|---|---|---|")
    for name in args.only:
        changes, how = IMPLIED[name]
        ranges = {var: list(changes.get(var, bounds)) for var, bounds in TASKS[name].ranges.items()}
        ratios = {"ours": best_over_seeds(name, None) / paper[name],
                  "implied": best_over_seeds(name, {"ranges": ranges}) / paper[name]}
        for key, ratio in ratios.items():
            within[key] += 1 / factor <= ratio <= factor
        box = ", ".join(f"{var} in [{low:.3g}, {high:.3g}]" for var, (low, high) in changes.items())
        print(f"| {name} | {box} ({how}) | {paper[name]:.2e} | {ratios['ours']:.3g}× | {ratios['implied']:.3g}× |",
              flush=True)
    print(f"| within ×{factor:g} | | | {within['ours']} of {len(args.only)} | {within['implied']} of {len(args.only)} |")


if __name__ == "__main__":
    main()
