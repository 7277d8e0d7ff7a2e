"""Sequential ``kan.train.fit`` vs batched ``kan.batched.fit_many`` on a fixed mini-sweep, an
estimate of the paper profile's total training time from measured per-step costs, the science
experiments' CPU time at the paper's settings extrapolated from short probes
(:mod:`kan.science.cost`; ``--no-science`` skips them, ``--science-only`` runs only them), and a
compute floor for the trainings from FLOP counts and the machine's measured matrix-product rate.

Run: ``.venv/bin/python benchmarks/bench_sweep.py`` (``--help`` for options). Everything is
float64 on 1000 training / 1000 test points, as the paper profile (workflow/config/paper.yaml).

Mini-sweep: 15 KANs on Feynman I.6.20 (θ, σ → exp(-θ²/2σ²)/√(2πσ²)): 3 seeds × depths 2–6 of
width 5, where depth d means d layers (shape with d + 1 entries: [2,5,1], [2,5,5,1], …,
[2,5,5,5,5,5,1]); grid schedule G = 3, 5, 10 with 67 L-BFGS steps per phase (201 steps in all;
one step = one optimizer step of up to 20 inner iterations). ``fit_many(batch="always")`` groups
the 15 models by shape into 5 batched programs of 3 models; the benchmark times these 5 programs one by one,
each right after the sequential fits of the same 3 models.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from kan import KAN, MLP
from kan.batched import fit_many
from kan.data import family_module, generate_to_dir, read_dataset, to_tensors
from kan.experiments.progress import data_definitions, training_state
from kan.experiments.sweep import Training, expand, total_steps
from kan.pipeline.cli import PUBLISHED, SCHEMA
from kan.pipeline.config import load_config
from kan.records.publish import RUNS, SCIENCE, is_current
from kan.science import cost
from kan.train import FitResult, TrainConfig, fit

SEEDS = (0, 1, 2)
DEPTHS = (2, 3, 4, 5, 6)
ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIG = ROOT / "workflow" / "config" / "paper.yaml"
PROBE_GRIDS = (3, 10, 50, 200, 1000)  # per-step cost vs G, interpolated in log G in between


def feynman_data(name: str = "I.6.20", seed: int = 0, spec: dict | None = None) -> dict[str, Tensor]:
    """A Feynman dataset through the project's data API (generate, write, read back); ``spec``
    overrides the task's defaults (e.g. its ranges)."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = generate_to_dir("feynman", name, spec, seed, Path(tmp) / name)
        return {k: v.contiguous() for k, v in to_tensors(read_dataset(directory), dtype=torch.float64).items()}


def kan_width(depth: int, n_in: int = 2, hidden: int = 5) -> list[int]:
    """Depth d = d layers: ``[n_in] + [hidden] * (d - 1) + [1]``."""
    return [n_in] + [hidden] * (depth - 1) + [1]


def run_sequential(models: Sequence[nn.Module], data: Mapping[str, Tensor], config: TrainConfig) -> list[FitResult]:
    return [fit(model, data, config) for model in models]


def run_batched(models: Sequence[nn.Module], data: Mapping[str, Tensor], config: TrainConfig) -> list[FitResult]:
    return fit_many(models, [data] * len(models), config, batch="always")


Runner = Callable[[Sequence[nn.Module], Mapping[str, Tensor], TrainConfig], list[FitResult]]


def timed(runner: Runner, models: Sequence[nn.Module], data: Mapping[str, Tensor], config: TrainConfig) -> tuple[float, list[FitResult]]:
    started = time.perf_counter()
    results = runner(models, data, config)
    return time.perf_counter() - started, results


def rmse_summary(results: Sequence[FitResult]) -> str:
    values = [r.final["test_rmse"] for r in results if r.status == "ok"]
    failed = len(results) - len(values)
    text = f"{statistics.median(values):.2e} [{min(values):.1e}, {max(values):.1e}]" if values else "-"
    return text + (f" ({failed} not ok)" if failed else "")


@dataclass
class Timing:
    threads: int
    sequential: float
    batched: float
    sequential_rmse: str
    batched_rmse: str
    per_depth: dict[int, tuple[float, float]]  # seconds per model-step (sequential, batched), best run


def mini_sweep(data: Mapping[str, Tensor], config: TrainConfig, threads: int, repeats: int) -> Timing:
    """Wall times of the mini-sweep, sequential vs batched, interleaved per depth group (3 seeds of
    one shape, which is exactly one batched program of ``fit_many``) so that both runners see the
    same machine load; best of ``repeats`` per group and runner, fresh models every run. The
    totals are sums over the 5 groups."""
    torch.set_num_threads(threads)
    steps = config.steps * len(config.grid_schedule)
    runners = {"sequential": run_sequential, "batched": run_batched}
    best: dict[tuple[str, int], tuple[float, list[FitResult]]] = {}
    for _ in range(repeats):
        for depth in DEPTHS:
            for name, runner in runners.items():
                models = [KAN(kan_width(depth), num_intervals=3, seed=s, dtype=torch.float64) for s in SEEDS]
                seconds, results = timed(runner, models, data, config)
                print(f"[{threads} thread(s)] depth {depth} {name}: {seconds:.1f} s", file=sys.stderr, flush=True)
                if (name, depth) not in best or seconds < best[name, depth][0]:
                    best[name, depth] = (seconds, results)
    total = {name: sum(best[name, d][0] for d in DEPTHS) for name in runners}
    results = {name: [r for d in DEPTHS for r in best[name, d][1]] for name in runners}
    per_depth = {d: (best["sequential", d][0] / (len(SEEDS) * steps), best["batched", d][0] / (len(SEEDS) * steps))
                 for d in DEPTHS}
    return Timing(threads, total["sequential"], total["batched"], rmse_summary(results["sequential"]),
                  rmse_summary(results["batched"]), per_depth)


def per_step_seconds(make: Callable[[], list[nn.Module]], data: Mapping[str, Tensor], steps: int,
                     num_intervals: int | None, repeats: int) -> tuple[float, float]:
    """Seconds per model and optimizer step (sequential, batched) for fresh models from ``make``,
    on grid ``num_intervals`` (set by a grid update before timing) or without a grid (MLPs)."""
    config = TrainConfig(steps=steps)
    costs = []
    for runner in (run_sequential, run_batched):
        best = math.inf
        for _ in range(repeats):
            models = make()
            if num_intervals is not None:
                for model in models:
                    model.update_grid(data["train_input"], num_intervals)
            seconds, _ = timed(runner, models, data, config)
            best = min(best, seconds / (len(models) * steps))
        costs.append(best)
    return costs[0], costs[1]


def interpolate_log(points: Mapping[int, float], x: int) -> float:
    """Piecewise-linear interpolation in log x (held constant beyond the ends)."""
    xs = sorted(points)
    if x <= xs[0]:
        return points[xs[0]]
    if x >= xs[-1]:
        return points[xs[-1]]
    for lo, hi in zip(xs, xs[1:]):
        if lo <= x <= hi:
            w = (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
            return (1 - w) * points[lo] + w * points[hi]
    raise AssertionError("unreachable")


def paper_trainings(config: Path = PAPER_CONFIG) -> list[Training]:
    """Every training of a profile (default the paper's), expanded from its config as the workflow does."""
    return expand(load_config(config, ROOT / SCHEMA))


def kan_depth(training: Training) -> int:
    """Layers of a KAN training: its hidden widths + 1, or the dataset's paper shape."""
    if training.model["hidden"] != "paper":
        return len(training.model["hidden"]) + 1
    shape = family_module(training.family).TASKS[training.dataset].shape
    return len(shape) - 1 if shape else 2


def phases(training: Training) -> list[tuple[int | None, int]]:
    """(G or None for MLPs, steps) per training phase; the pruned variant's sparsification phase
    runs at the first G."""
    steps, schedule = training.train["steps"], list(training.train["grid_schedule"])
    if training.kind == "mlp":
        return [(None, steps * len(schedule))]
    return ([(schedule[0], steps)] if training.prune else []) + [(g, steps) for g in schedule]


def mlp_widths(training: Training, task: object) -> list[int]:
    """Full MLP shape: the task's inputs, the hidden widths, its targets."""
    n_in = len(getattr(task, "input_names", task.ranges))
    return [n_in, *training.model["hidden"], len(getattr(task, "target_names", ("y",)))]


def mlp_flop_floor(trainings: Sequence[Training], iterations: int = 20) -> float:
    """FLOPs the MLP trainings need at the very least: 6 per parameter and training point per
    forward+backward (2 forward, 4 backward), one evaluation per L-BFGS inner iteration."""
    total = 0.0
    for training in trainings:
        if training.kind != "mlp":
            continue
        task = family_module(training.family).TASKS[training.dataset]
        widths = mlp_widths(training, task)
        params = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
        n_train = {**task.defaults(), **training.data["spec"]}["n_train"]
        total += 6.0 * params * n_train * iterations * total_steps(training)
    return total


def matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    """Best float64 matrix-product rate of one thread, GFLOP/s (a ceiling for dense MLP work)."""
    a, b = torch.rand(size, size, dtype=torch.float64), torch.rand(size, size, dtype=torch.float64)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


@dataclass
class CostModel:
    """Measured seconds per model and optimizer step, (sequential, batched) each."""

    kan: Mapping[int, tuple[float, float]]  # width-5 KAN by depth, G in 3..10
    grid_factor: Mapping[int, tuple[float, float]]  # depth-4 KAN at G relative to G in 3..10
    mlp: Mapping[int, tuple[float, float]]  # [2, w, w, w, 1] MLP by width w

    def step_cost(self, training: Training, grid: int | None, runner: int) -> float:
        if training.kind == "kan":
            depth = min(max(kan_depth(training), DEPTHS[0]), DEPTHS[-1])
            factors = {g: f[runner] for g, f in self.grid_factor.items()}
            return self.kan[depth][runner] * interpolate_log(factors, grid)  # type: ignore[arg-type]
        width = training.model["hidden"][0]
        return interpolate_log({w: c[runner] for w, c in self.mlp.items()}, width) * (len(training.model["hidden"]) + 1) / 4

    def seconds(self, training: Training, runner: int) -> float:
        return sum(steps * self.step_cost(training, grid, runner) for grid, steps in phases(training))

    def default_seconds(self, training: Training) -> float:
        """What ``fit_many(batch="auto")`` costs on CPU: KAN phases stacked except the pruned
        variant's sparsification phase (λ > 0 trains one at a time), MLPs one at a time."""
        if training.kind != "kan":
            return self.seconds(training, 0)
        runs = phases(training)
        sparsify = 1 if training.prune else 0
        return sum(steps * self.step_cost(training, grid, 0 if i < sparsify else 1) for i, (grid, steps) in enumerate(runs))


def print_table(timings: Sequence[Timing], models: int, steps: int) -> None:
    print(f"\n## Mini-sweep: {models} KANs, {steps} L-BFGS steps each (I.6.20, float64, 1000 points)\n")
    print("| threads | sequential fit (s) | fit_many (s) | speed-up | test RMSE sequential: median [min, max] | test RMSE fit_many |")
    print("|---|---|---|---|---|---|")
    for t in timings:
        print(f"| {t.threads} | {t.sequential:.1f} | {t.batched:.1f} | {t.sequential / t.batched:.2f}x "
              f"| {t.sequential_rmse} | {t.batched_rmse} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps-per-phase", type=int, default=67, help="L-BFGS steps per grid phase (default 67)")
    parser.add_argument("--repeats", type=int, default=1, help="best-of-N for the mini-sweep (default 1)")
    parser.add_argument("--probe-steps", type=int, default=4, help="steps per cost probe (default 4)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    parser.add_argument("--config", type=Path, default=PAPER_CONFIG,
                        help="the profile to price (default workflow/config/paper.yaml; e.g. paper-night.yaml)")
    science_flags = parser.add_mutually_exclusive_group()
    science_flags.add_argument("--no-science", action="store_true", help="skip the science experiments' cost probes")
    science_flags.add_argument("--science-only", action="store_true",
                               help="only the science experiments' cost probes (no mini-sweep, no training estimate)")
    args = parser.parse_args()
    config_path = args.config.resolve()
    science = load_config(config_path, ROOT / SCHEMA)["science"]
    if args.science_only:
        print_science(science, science_estimates(science), ROOT / PUBLISHED)
        return

    data = feynman_data()
    config = TrainConfig(steps=args.steps_per_phase, grid_schedule=(3, 5, 10))
    timings = [mini_sweep(data, config, threads, args.repeats) for threads in args.threads]
    total_steps = config.steps * len(config.grid_schedule)
    print_table(timings, len(SEEDS) * len(DEPTHS), total_steps)

    torch.set_num_threads(1)
    mlp_cost = {width: per_step_seconds(lambda w=width: [MLP([2, w, w, w, 1], seed=s, dtype=torch.float64)
                                                           for s in SEEDS], data, args.probe_steps, None, 2)
                for width in (5, 20, 100)}
    costs = CostModel(timings[0].per_depth, grid_factors(data, args.probe_steps), mlp_cost)
    estimates = {} if args.no_science else science_estimates(science)
    trainings = paper_trainings(config_path)
    print_estimate(costs, trainings, estimates, config_path)
    print_science(science, estimates, ROOT / PUBLISHED)
    print_assumptions()
    print_measured(costs, trainings, ROOT / PUBLISHED)


def science_estimates(science: Mapping[str, Mapping[str, Any]]) -> dict[str, cost.Estimate]:
    """Each science experiment's CPU time at the paper's settings from its probes (1 thread)."""
    torch.set_num_threads(1)
    for name in science:
        cost.scaling(name)  # every experiment has a rule before any probe runs
    estimates = {}
    for name, settings in science.items():
        print(f"[science] probing {name} at fractions {cost.scaling(name).fractions}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            estimates[name] = cost.estimate(name, settings, tmp)
    return estimates


def grid_factors(data: Mapping[str, Tensor], steps: int) -> dict[int, tuple[float, float]]:
    """Per-step cost at G relative to the mini-sweep's grids (mean of G = 3, 5, 10), depth-4 KANs."""
    make = lambda: [KAN(kan_width(4), num_intervals=3, seed=s, dtype=torch.float64) for s in SEEDS]
    measured = {g: per_step_seconds(make, data, steps, g, 2) for g in sorted(set(PROBE_GRIDS) | {5})}
    base = [statistics.mean(measured[g][i] for g in (3, 5, 10)) for i in (0, 1)]
    return {g: (c[0] / base[0], c[1] / base[1]) for g, c in measured.items()}


def print_estimate(costs: CostModel, trainings: Sequence[Training], science: Mapping[str, cost.Estimate],
                   config: Path = PAPER_CONFIG) -> None:
    print("\n## Measured per-step costs (1 thread, seconds per model and L-BFGS step)\n")
    print("| model | sequential | fit_many (groups of 3) | speed-up |")
    print("|---|---|---|---|")
    for depth, (seq, bat) in costs.kan.items():
        print(f"| KAN depth {depth}, G in 3..10 | {seq:.4f} | {bat:.4f} | {seq / bat:.2f}x |")
    for g, (fs, fb) in sorted(costs.grid_factor.items()):
        print(f"| KAN depth 4, G = {g} (relative to G 3..10) | x{fs:.2f} | x{fb:.2f} | |")
    for width, (seq, bat) in costs.mlp.items():
        print(f"| MLP [2,{width},{width},{width},1] | {seq:.4f} | {bat:.4f} | {seq / bat:.2f}x |")

    steps = sum(map(total_steps, trainings))
    print(f"\n## Estimate for {config.stem}: {len(trainings)} trainings, {steps / 1e6:.2f} M L-BFGS steps "
          f"(expanded from {os.path.relpath(config, ROOT)})\n")
    print("| experiment | trainings | M steps | sequential CPU-h | fit_many stacked CPU-h | default CPU-h | best of both CPU-h |")
    print("|---|---|---|---|---|---|---|")
    totals = [0.0, 0.0, 0.0, 0.0]
    for experiment in dict.fromkeys(t.experiment for t in trainings):
        mine = [t for t in trainings if t.experiment == experiment]
        runs = [(costs.seconds(t, 0), costs.seconds(t, 1), costs.default_seconds(t)) for t in mine]
        seconds = [sum(r[0] for r in runs), sum(r[1] for r in runs), sum(r[2] for r in runs),
                   sum(min(r[:2]) for r in runs)]
        totals = [a + b for a, b in zip(totals, seconds)]
        print(f"| {experiment} | {len(mine)} | {sum(map(total_steps, mine)) / 1e6:.2f} | "
              + " | ".join(f"{x / 3600:.1f}" for x in seconds) + " |")
    if science:
        seconds = sum(e.seconds for e in science.values())
        totals = [x + seconds for x in totals]
        print(f"| science ({len(science)} experiments, table below) | | | " + " | ".join([f"{seconds / 3600:.1f}"] * 4) + " |")
    covered = "trainings and science experiments" if science else "trainings only, science not probed"
    print(f"| total ({covered}) | {len(trainings)} | {steps / 1e6:.2f} | "
          + " | ".join(f"{x / 3600:.1f}" for x in totals) + " |")
    print(f"\nOn 2 cores (two single-thread processes; {covered}): sequential {totals[0] / 7200:.1f} h, fit_many "
          f"stacked {totals[1] / 7200:.1f} h, default {totals[2] / 7200:.1f} h, best of both {totals[3] / 7200:.1f} h. "
          "Default: what fit_many(batch=\"auto\") does on CPU, KANs stacked (bit for bit their single fits), "
          "except the pruned variant's sparsification phase, MLPs one at a time.")
    floor, rate = mlp_flop_floor(trainings), matmul_gflops()
    print(f"\nCompute floor: the MLP trainings alone need at least {floor / 1e15:.0f} PFLOP (6 FLOP per parameter, "
          f"training point and L-BFGS iteration, 20 iterations per step); at this machine's measured float64 "
          f"matrix-product peak ({rate:.0f} GFLOP/s per thread) that is {floor / (2 * rate * 1e9) / 3600:.1f} h on "
          f"2 cores, before any KAN.")


def published_science(records_dir: Path, name: str) -> dict[str, Any] | None:
    """The published paper run's record of science experiment ``name``, when current."""
    path = records_dir / SCIENCE / name / "run.json"
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    return record if record is not None and is_current(record, name) else None


def print_science(science: Mapping[str, Mapping[str, Any]], estimates: Mapping[str, cost.Estimate],
                  records_dir: Path) -> None:
    """Per science experiment: the probes, the estimate at the paper's settings and, where the
    published paper run measured it, its CPU time (the ratio checks the method)."""
    print(f"\n## Science experiments at the paper's settings ({len(estimates)} probed, 1 thread)\n")
    print("| experiment | knobs scaled | probe fractions | probe CPU s | data CPU s | fixed CPU s | estimated CPU-h "
          "| published CPU-h | published / estimated |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in science:
        rule, estimate, record = cost.scaling(name), estimates.get(name), published_science(records_dir, name)
        knobs = ", ".join([*rule.knobs, *(f"{b} (as {k})" for b, k in rule.priced_with.items())])
        cells = ([", ".join(f"{f:.3g}" for f, _ in estimate.probes), ", ".join(f"{s:.1f}" for _, s in estimate.probes),
                  f"{estimate.data_seconds:.1f}", f"{estimate.fixed:.1f}", f"{estimate.seconds / 3600:.3f}"]
                 if estimate else ["not probed", "", "", "", ""])
        published = [f"{record['cpu_seconds'] / 3600:.3f}",
                     f"{record['cpu_seconds'] / estimate.seconds:.2f}" if estimate else ""] if record else ["not run", ""]
        print(f"| {name} | {knobs} | " + " | ".join(cells + published) + " |")
    if estimates:
        total = sum(e.seconds for e in estimates.values())
        print(f"| total | | | {sum(s for e in estimates.values() for _, s in e.probes):.1f} | | | {total / 3600:.3f} | | |")
    print()
    for name in science:
        notes = [cost.scaling(name).note, *(estimates[name].datasets if name in estimates else ())]
        for note in filter(None, notes):
            print(f"- {name}: {note}")


def print_assumptions() -> None:
    print("\nCounting and assumptions:")
    for line in ASSUMPTIONS:
        print(f"- {line}")


def measured_seconds(training: Training, records: Mapping[str, Mapping]) -> tuple[float, bool]:
    """(seconds, is CPU time) of a finished training's longest run: CPU time where recorded, else wall time."""
    longest = max((records[s.run_id] for s in training.stages if s.run_id in records), key=lambda r: r["steps"])
    cpu = longest.get("cpu_seconds")
    return (float(cpu), True) if cpu is not None and math.isfinite(cpu) else (float(longest["seconds"]), False)


def print_measured(costs: CostModel, trainings: Sequence[Training], records_dir: Path) -> None:
    """The trainings' estimate next to what the published paper run measured, per experiment."""
    print(f"\n## Estimate vs the published paper run ({records_dir.relative_to(ROOT)})\n")
    if not (records_dir / RUNS).is_file():
        print("No published records yet.")
        return
    records = {r["run_id"]: r for r in pd.read_parquet(records_dir / RUNS).to_dict("records")}
    definitions = data_definitions(trainings)
    print("| experiment | trainings finished | estimated CPU-h (same trainings) | measured h | measured / estimated | measured as |")
    print("|---|---|---|---|---|---|")
    for experiment in dict.fromkeys(t.experiment for t in trainings):
        done = [t for t in trainings if t.experiment == experiment and training_state(t, records, definitions) == "current"]
        if not done:
            print(f"| {experiment} | 0 | | | | |")
            continue
        measured = [measured_seconds(t, records) for t in done]
        estimated, seconds = sum(costs.seconds(t, 0) for t in done), sum(m[0] for m in measured)
        kind = "CPU time" if all(m[1] for m in measured) else "CPU time where recorded, else wall time"
        print(f"| {experiment} | {len(done)} | {estimated / 3600:.2f} | {seconds / 3600:.2f} | {seconds / estimated:.2f} | {kind} |")


ASSUMPTIONS = (
    "the trainings are the workflow's own expansion of the priced config (kan.experiments.sweep.expand), the same "
    "list `python -m kan plan <config>` counts",
    "science experiments: each runs at the paper's settings with its training-length knobs (table above) at two "
    "fractions f of their value; CPU time = fixed + slope x f, extrapolated to f = 1, plus the CPU time of "
    "generating its datasets once (kan.science.cost); one process each, not batched",
    "one step = one optimizer step of up to 20 L-BFGS inner iterations; a KAN trains `steps` per G of its "
    "schedule, the pruned variant one more sparsification phase at the first G; an MLP trains the same total",
    "KAN cost per step = measured width-5 cost at that depth (G 3..10; depth clipped to 2..6) x measured "
    "depth-4 factor for the phase's G (log-interpolated, held constant beyond the probes); human-shape, pruned "
    "and toy KANs are priced as width-5 KANs of their depth (an over-estimate for narrow and pruned shapes, an "
    "under-estimate for the 100-input toy task)",
    "MLP cost per step = measured [2,w,w,w,1] cost, log-interpolated in w, x (hidden layers + 1) / 4",
    "fit_many priced at groups of 3 (the seeds of one configuration, as the runner groups them)",
    "2 cores = two independent single-thread processes, no contention between them (optimistic on this machine)",
)


if __name__ == "__main__":
    main()
