"""Core benchmark: our KAN layers vs an equal-parameter MLP vs pykan 0.2.8, and one whole fit.

    .venv/bin/python benchmarks/bench_core.py [--quick] [--no-pykan] [--rounds R]

Prints one markdown table (progress goes to stderr). Every figure comes from the same run; pykan
runs in subprocesses with its own site directory on PYTHONPATH (it is also imported as ``kan``),
installed there on first use. Method notes are in ``_common.py`` and the README's "Performance".
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from _common import FIT, cpu_time, layer_calls, layer_cases, peak_memory_mb, release_large_blocks, toy_dataset
from kan import KAN, MLP
from kan.train import TrainConfig, fit

HERE = Path(__file__).resolve().parent
PYKAN_SITE = Path(os.environ.get("PYKAN_SITE", "/tmp/pykan_site"))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_pykan() -> str | None:
    """Install pykan 0.2.8 (without dependencies: they are in the venv) into PYKAN_SITE if missing.

    Returns None when pykan is usable, otherwise the reason it is not."""
    if (PYKAN_SITE / "kan" / "MultKAN.py").exists():
        return None
    log(f"installing pykan 0.2.8 into {PYKAN_SITE}")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(PYKAN_SITE), "pykan==0.2.8"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"pykan 0.2.8 could not be installed ({error})"
    if done.returncode != 0:
        return f"pykan 0.2.8 could not be installed (offline?): {done.stderr.strip().splitlines()[-1:]}"
    return None


def run_worker(script: Path, args: list[str], pythonpath: list[Path]) -> dict:
    """Run a measurement worker in a fresh interpreter and parse its JSON line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath))
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env, cwd=HERE)
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {args} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mlp_like(width: list[int], params: int) -> MLP:
    """SiLU MLP from width[0] to width[-1] with max(2, L) linear layers (L = KAN depth) and the
    hidden size whose parameter count is closest to ``params``."""
    depth = max(2, len(width) - 1)

    def shape(hidden: int) -> list[int]:
        return [width[0], *[hidden] * (depth - 1), width[-1]]

    def count(hidden: int) -> int:  # weights and biases, without building (and initialising) the model
        return sum((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(shape(hidden)))

    first_not_below = bisect.bisect_left(range(1, 10**7), params, key=count) + 1  # count grows with hidden
    hidden = min({max(1, first_not_below - 1), first_not_below}, key=lambda h: (abs(count(h) - params), h))
    mlp = MLP(shape(hidden))
    assert mlp.num_parameters() == count(hidden)
    return mlp


def models_for(width: list[int], grid: int) -> dict[str, torch.nn.Module]:
    kan = KAN(width, num_intervals=grid, seed=0)
    return {"ours": kan, "mlp": mlp_like(width, kan.num_parameters())}


def cuda_time(fn: Callable[[], None], repeats: int = 20) -> float:
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def cuda_peak_mb(fn: Callable[[], None]) -> float:
    fn()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 1e6


def measure_ours(quick: bool, device: str) -> tuple[dict, dict]:
    """Times {case: {"ours"/"mlp": {"fwd", "fwd_bwd"}}} and, on CUDA, peak memory {case: {name: MB}}
    (CPU memory is measured in a subprocess, see :func:`memory_worker`)."""
    times: dict[str, dict[str, dict[str, float]]] = {}
    memory: dict[str, dict[str, float]] = {}
    timer = cuda_time if device == "cuda" else cpu_time
    for width, grid, batch in layer_cases(quick):
        key = f"{width}|{grid}|{batch}"
        log(f"ours {device} {key}")
        times[key], memory[key] = {}, {}
        for name, model in models_for(width, grid).items():
            forward, forward_backward = layer_calls(model, width, batch, device)
            times[key][name] = {"fwd": timer(forward), "fwd_bwd": timer(forward_backward)}
            if device == "cuda":
                memory[key][name] = cuda_peak_mb(forward_backward)
    return times, memory


def memory_worker(quick: bool) -> None:
    """Entry point of the CPU memory subprocess: prints {case: {"ours": MB, "mlp": MB}}."""
    release_large_blocks()
    torch.set_num_threads(1)
    out = {}
    for width, grid, batch in layer_cases(quick):
        out[f"{width}|{grid}|{batch}"] = {
            name: peak_memory_mb(lambda name=name: layer_calls(models_for(width, grid)[name], width, batch, "cpu")[1])
            for name in ("ours", "mlp")
        }
    print(json.dumps(out))


def fit_ours(steps: int, seed: int) -> dict[str, float]:
    """The toy fit with pykan's fit defaults mirrored: grid updates every 5 steps up to step 50."""
    data = {k: torch.from_numpy(v) for k, v in toy_dataset(FIT["n_train"], FIT["n_test"], FIT["seed"]).items()}
    model = KAN(FIT["width"], num_intervals=FIT["grid"], seed=seed)
    config = TrainConfig(steps=steps, grid_update_every=5, grid_update_until=50)
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit(model, data, config)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "test_rmse": result.final["test_rmse"]}


def fmt(value: float | None, scale: float = 1.0) -> str:
    if value is None:
        return "—"
    value *= scale
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def ratio(numerator: float | None, denominator: float | None) -> str:
    return "—" if numerator is None or denominator is None else f"{numerator / denominator:.1f}×"


HEADER = ("| benchmark | device | shape | G | batch | ours | MLP | pykan | pykan / ours | ours / MLP "
          "| peak MB ours | peak MB MLP | peak MB pykan |")


def layer_rows(times: dict, pykan: dict | None, memory: dict, pykan_memory: dict | None, device: str) -> list[str]:
    lines = []
    for key, row in times.items():
        width, grid, batch = key.split("|")
        theirs = (pykan or {}).get(key)
        for kind, label in (("fwd", "forward ms"), ("fwd_bwd", "forward+backward ms")):
            mine, mlp = row["ours"][kind], row["mlp"][kind]
            other = theirs[kind] if theirs else None
            mem = ["", "", ""]
            if kind == "fwd_bwd":
                mem = [fmt(memory[key]["ours"]), fmt(memory[key]["mlp"]), fmt((pykan_memory or {}).get(key))]
            lines.append(
                f"| {label} | {device} | {width} | {grid} | {batch} | {fmt(mine, 1e3)} | {fmt(mlp, 1e3)} "
                f"| {fmt(other, 1e3)} | {ratio(other, mine)} | {ratio(mine, mlp)} | " + " | ".join(mem) + " |"
            )
    return lines


def median_fit(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Median CPU time, wall time and test RMSE over one fit per model seed, and the RMSEs."""
    summary: dict[str, Any] = {key: statistics.median(run[key] for run in runs) for key in ("cpu", "wall", "test_rmse")}
    summary["rmse_by_seed"] = [run["test_rmse"] for run in runs]
    return summary


def fit_rows(fits: dict, steps: int) -> list[str]:
    lines = []
    theirs = fits.get("pykan")
    seeds = f"median of {len(FIT['model_seeds'])} seeds"
    for field, label in (("cpu", f"CPU s, {seeds}"), ("wall", f"wall s, {seeds}"), ("test_rmse", f"test RMSE, {seeds}")):
        mine, other = fits["ours"][field], (theirs[field] if theirs else None)
        if field == "test_rmse":
            compared = "—" if other is None else f"ours/pykan {mine / other:.2f}"
        else:
            compared = ratio(other, mine)
        lines.append(
            f"| fit, {steps} LBFGS steps: {label} | cpu | {FIT['width']} | {FIT['grid']} | {FIT['n_train']} "
            f"| {fmt(mine)} | — | {fmt(other)} | {compared} | — | | | |"
        )
    return lines


def fastest(rounds: list[dict]) -> dict:
    """Element-wise minimum of nested timing dicts with the same keys."""
    first = rounds[0]
    return {
        key: fastest([r[key] for r in rounds]) if isinstance(value, dict) else min(r[key] for r in rounds)
        for key, value in first.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset of the layer cases (a few minutes)")
    parser.add_argument("--no-pykan", action="store_true", help="skip the pykan columns")
    parser.add_argument("--rounds", type=int, default=3,
                        help="layer timings alternate ours / pykan this many times; each figure is the best round")
    parser.add_argument("--memory-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(args.quick)
        return
    torch.set_num_threads(1)
    flags = ["--quick"] if args.quick else []
    steps = FIT["steps"]
    note = "pykan skipped (--no-pykan)" if args.no_pykan else ensure_pykan()
    worker, pykan_path = HERE / "_pykan_worker.py", [PYKAN_SITE, HERE]
    fits = {"ours": median_fit([fit_ours(steps, seed) for seed in FIT["model_seeds"]])}
    log(f"our fits: {fits['ours']}")
    pykan = pykan_memory = None
    if note is None:
        runs = [run_worker(worker, ["fit", f"--steps={steps}", f"--seed={seed}"], pykan_path) for seed in FIT["model_seeds"]]
        fits["pykan"] = median_fit(runs)
        log(f"pykan fits: {fits['pykan']}")
    our_rounds, pykan_rounds = [], []
    for round_index in range(max(1, args.rounds)):  # spread over the run: a noisy spell hits one round
        our_rounds.append(measure_ours(args.quick, "cpu")[0])
        if note is None:
            log(f"pykan layers, round {round_index + 1} (slow)")
            pykan_rounds.append(run_worker(worker, ["layers", *flags], pykan_path))
    times = fastest(our_rounds)
    memory = run_worker(Path(__file__), ["--memory-worker", *flags], [HERE])
    if note is None:
        pykan = fastest(pykan_rounds)
        pykan_memory = run_worker(worker, ["memory", *flags], pykan_path)
    lines = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    lines += layer_rows(times, pykan, memory, pykan_memory, "cpu")
    if torch.cuda.is_available():
        cuda_times, cuda_memory = measure_ours(args.quick, "cuda")
        lines += layer_rows(cuda_times, None, cuda_memory, None, "cuda")
    lines += fit_rows(fits, steps)
    print("\n".join(lines))
    for name, summary in fits.items():
        rmses = ", ".join(f"{value:.3g}" for value in summary["rmse_by_seed"])
        print(f"\nfit test RMSE by model seed {FIT['model_seeds']}, {name}: {rmses}")
    if note:
        print(f"\nNote: {note}.")


if __name__ == "__main__":
    main()
