"""Measurements of pykan 0.2.8, run as ``PYTHONPATH=<pykan site> python _pykan_worker.py MODE [--quick]``.

Prints one JSON line. MODE: ``layers`` (CPU times), ``memory`` (peak memory), ``fit``
(``--steps=N`` LBFGS steps from model seed ``--seed=S``) or ``schedule`` (the paper's grid
extension on a saved dataset: ``--data=FILE.npz --shape=2,1,1 --grids=3,5,... --steps=N --seed=S
--dtype=float64``; the train and test RMSE at the end of every phase).
pykan is used as its ``fit`` uses it: ``save_act`` and the symbolic branch off (lamb = 0); in
``schedule`` mode with all of ``fit``'s defaults (its in-phase grid updates included) and
``refine`` between phases, as the paper's examples do.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import torch

from _common import FIT, cpu_time, layer_calls, layer_cases, peak_memory_mb, release_large_blocks, toy_dataset

SLOW_CALL_S = 20.0  # a call slower than this is timed once (after a warm-up), not best of N


def _model(width: list[int], grid: int, seed: int = 0):
    from kan import KAN  # pykan: the worker runs with pykan first on the path

    model = KAN(width=list(width), grid=grid, k=3, seed=seed, auto_save=False)
    model.save_act, model.symbolic_enabled = False, False
    return model


def _time(fn) -> float:
    start = time.thread_time()
    fn()
    if time.thread_time() - start > SLOW_CALL_S:
        start = time.thread_time()
        fn()
        return time.thread_time() - start
    return cpu_time(fn, blocks=3, budget=30.0)


def main() -> None:
    mode, quick = sys.argv[1], "--quick" in sys.argv
    steps = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--steps=")), FIT["steps"])
    seed = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--seed=")), 0)
    torch.set_num_threads(1)
    result: dict[str, object] = {}
    if mode == "layers":
        for width, grid, batch in layer_cases(quick):
            forward, forward_backward = layer_calls(_model(width, grid), width, batch)
            result[f"{width}|{grid}|{batch}"] = {"fwd": _time(forward), "fwd_bwd": _time(forward_backward)}
    elif mode == "memory":
        release_large_blocks()
        for width, grid, batch in layer_cases(quick):
            result[f"{width}|{grid}|{batch}"] = peak_memory_mb(lambda: layer_calls(_model(width, grid), width, batch)[1])
    elif mode == "fit":
        data = {k: torch.from_numpy(v) for k, v in toy_dataset(FIT["n_train"], FIT["n_test"], FIT["seed"]).items()}
        model = _model(FIT["width"], FIT["grid"], seed)
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(data, opt="LBFGS", steps=steps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with torch.no_grad():
            rmse = float(((model(data["test_input"]) - data["test_label"]) ** 2).mean().sqrt())
        result = {"wall": wall, "cpu": cpu, "test_rmse": rmse}
    elif mode == "schedule":
        result = _grid_schedule(dict(a.removeprefix("--").split("=", 1) for a in sys.argv[2:] if "=" in a))
    print(json.dumps(result))


def _grid_schedule(options: dict[str, str]) -> dict[str, object]:
    """pykan's ``fit`` for ``steps`` per G, ``refine`` to the next G; RMSEs at each phase's end."""
    import numpy as np
    from kan import KAN

    dtype = getattr(torch, options.get("dtype", "float64"))
    torch.set_default_dtype(dtype)  # pykan builds its tensors in the default dtype
    arrays = np.load(options["data"])
    keys = ("train_input", "train_label", "test_input", "test_label")
    data = {key: torch.as_tensor(arrays[key], dtype=dtype) for key in keys}
    grids = [int(g) for g in options["grids"].split(",")]
    phases, started = [], time.process_time()
    with tempfile.TemporaryDirectory() as checkpoints:  # refine saves a checkpoint there
        model = KAN(width=[int(w) for w in options["shape"].split(",")], grid=grids[0], k=3,
                    seed=int(options.get("seed", 0)), auto_save=False, ckpt_path=checkpoints)
        for phase, grid in enumerate(grids):
            if phase:
                model = model.refine(grid)
                model.auto_save = False
            model.fit(data, opt="LBFGS", steps=int(options["steps"]), log=10**9)
            with torch.no_grad():
                rmse = {split: float(((model(data[f"{split}_input"]) - data[f"{split}_label"]) ** 2).mean().sqrt())
                        for split in ("train", "test")}
            phases.append({"grid": grid, "train_rmse": rmse["train"], "test_rmse": rmse["test"]})
    return {"phases": phases, "cpu": time.process_time() - started}


if __name__ == "__main__":
    main()
