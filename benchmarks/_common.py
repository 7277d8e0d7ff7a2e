"""Helpers shared by the benchmark driver and the pykan worker (which must not import our ``kan``).

Timing: thread CPU time (``time.thread_time``) at one torch thread, best of N blocks; each block
repeats the call often enough to last >= ~20 ms. CPU time rather than wall time because the
machine is shared; wall times of the whole fits are reported too. The layer table repeats all
of this in rounds that alternate between ours and pykan and keeps each figure's best round: on a
shared virtual machine a noisy spell can last minutes and slow everything measured in it.
Peak memory: growth of the process' peak resident set (VmHWM, reset through
``/proc/self/clear_refs``) during one call, with glibc told to hand blocks >= 64 KiB straight
back to the OS so that the resident set follows the live tensors.
"""

from __future__ import annotations

import ctypes
import math
import re
import time
from typing import Callable

import numpy as np
import torch

LAYER_SHAPES = ([2, 5, 1], [4, 4, 2, 1], [17, 1, 14], [100, 100])
GRIDS = (5, 20, 100)
BATCHES = (1024, 10000)
QUICK_CASES = (([2, 5, 1], 5, 1024), ([2, 5, 1], 20, 1024), ([2, 5, 1], 100, 10000), ([17, 1, 14], 20, 1024),
               ([100, 100], 20, 1024))
# the data seed is fixed; each side fits once per model seed (a single seed is noise: the final
# test RMSE of both implementations varies about 2x between initialisations)
FIT = {"width": [2, 5, 1], "grid": 5, "steps": 200, "n_train": 1000, "n_test": 1000, "seed": 0, "model_seeds": [0, 1, 2]}


def layer_cases(quick: bool) -> list[tuple[list[int], int, int]]:
    """(width, G, batch) for the layer table."""
    if quick:
        return [(list(w), g, b) for w, g, b in QUICK_CASES]
    return [(list(w), g, b) for w in LAYER_SHAPES for g in GRIDS for b in BATCHES]


def toy_dataset(n_train: int, n_test: int, seed: int) -> dict[str, np.ndarray]:
    """f(x, y) = exp(sin(πx) + y²) on [-1, 1]², float32 arrays."""
    rng = np.random.default_rng(seed)

    def f(x: np.ndarray) -> np.ndarray:
        return np.exp(np.sin(np.pi * x[:, :1]) + x[:, 1:2] ** 2)

    x_train, x_test = rng.uniform(-1, 1, (n_train, 2)), rng.uniform(-1, 1, (n_test, 2))
    arrays = {"train_input": x_train, "train_label": f(x_train), "test_input": x_test, "test_label": f(x_test)}
    return {key: value.astype(np.float32) for key, value in arrays.items()}


def cpu_time(fn: Callable[[], object], blocks: int = 5, budget: float = 2.0) -> float:
    """Best per-call thread CPU time in seconds (one warm-up call first)."""
    start = time.thread_time()
    fn()
    once = max(time.thread_time() - start, 1e-6)
    inner = max(1, math.ceil(0.02 / once))
    blocks = max(1, min(blocks, int(budget / (once * inner))))
    best = math.inf
    for _ in range(blocks):
        start = time.thread_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.thread_time() - start) / inner)
    return best


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(field + r":\s+(\d+)", status.read()).group(1))


def release_large_blocks() -> None:
    """Make glibc return blocks >= 64 KiB to the OS at once (call first in a memory subprocess)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 65536)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 65536)  # M_TRIM_THRESHOLD


def peak_memory_mb(make_call: Callable[[], Callable[[], object]]) -> float:
    """Growth of the peak resident set during the first call of a fresh ``make_call()``, in MB.
    A warm-up call of another one comes first, so one-time costs (building the kernel, the
    allocator's arenas) are not counted; what the measured call allocates and keeps (a model's
    cached per-sample buffers) is."""
    make_call()()
    fn = make_call()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM to the current resident set
    before = _status_kib("VmRSS")
    fn()
    return (_status_kib("VmHWM") - before) * 1024 / 1e6


def layer_calls(model: torch.nn.Module, width: list[int], batch: int, device: str = "cpu") -> tuple[Callable, Callable]:
    """Forward (no grad) and forward+backward of ``model`` on a fixed batch in [-1, 1]."""
    model = model.to(device)
    x = (torch.rand(batch, width[0], generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def forward_backward() -> None:
        model.zero_grad()
        model(x).sum().backward()

    return forward, forward_backward
