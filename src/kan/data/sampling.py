"""Uniform sampling of inputs and frame/meta assembly for formula-defined tasks.

Used by the synthetic, Feynman and special-function families: inputs are drawn
independently and uniformly from their ranges (train first, then test, from one
generator), and output columns are computed from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sympy as sp

from kan.data.io import GeneratedData
from kan.data.spec import make_rng

Compute = Callable[[pd.DataFrame], Mapping[str, np.ndarray]]
DEFAULT_N = 1000
SIZE_NOTE = f"n_train = n_test = {DEFAULT_N} uniform samples by default (paper silent)"


def default_spec(ranges: Mapping[str, Sequence[float]], n_train: int = DEFAULT_N) -> dict[str, Any]:
    """Default spec of a uniformly sampled task: ``n_train`` train and DEFAULT_N test rows."""
    bounds = {var: [float(lo), float(hi)] for var, (lo, hi) in ranges.items()}
    return {"n_train": n_train, "n_test": DEFAULT_N, "ranges": bounds}


def ranges_note(ranges: Mapping[str, Sequence[float]], why: str = "") -> str:
    """A deviation line recording input ranges we chose, with an optional reason."""
    spans = ", ".join(f"{var} in [{lo:.4g}, {hi:.4g}]" for var, (lo, hi) in ranges.items())
    return f"ranges chosen here (paper silent): {spans}" + (f"; {why}" if why else "")


@dataclass(frozen=True)
class SymbolicTask:
    """A task whose output columns are sympy expressions of uniformly sampled variables.

    ``outputs`` maps column -> expression; ``ranges`` maps each sampled variable (symbol
    name) to its default [lo, hi]. ``inputs``/``targets`` default to the sampled variables
    and the output columns. ``shape`` is the paper's KAN shape, where it gives one;
    ``n_train`` the default number of training rows (say why in ``deviations`` when it is not
    DEFAULT_N).
    """

    outputs: Mapping[str, sp.Expr]
    ranges: Mapping[str, tuple[float, float]]
    inputs: tuple[str, ...] | None = None
    targets: tuple[str, ...] | None = None
    shape: tuple[int, ...] | None = None
    deviations: tuple[str, ...] = field(default=())
    n_train: int = DEFAULT_N

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.ranges) if self.inputs is None else self.inputs

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(self.outputs) if self.targets is None else self.targets

    @property
    def formula(self) -> str:
        if self.targets is None and len(self.outputs) == 1:
            return str(next(iter(self.outputs.values())))
        return "; ".join(f"{col} = {expr}" for col, expr in self.outputs.items())

    def defaults(self) -> dict[str, Any]:
        return default_spec(self.ranges, self.n_train)


def sample_uniform(
    rng: np.random.Generator, ranges: Mapping[str, Sequence[float]], n: int
) -> pd.DataFrame:
    """``n`` rows with each column uniform on its [lo, hi], drawn column by column."""
    return pd.DataFrame({var: rng.uniform(lo, hi, size=n) for var, (lo, hi) in ranges.items()})


def lambdify_outputs(outputs: Mapping[str, sp.Expr]) -> Compute:
    """Numeric (numpy/scipy) evaluation of ``outputs`` on a frame of the free symbols."""
    funcs = {}
    for col, expr in outputs.items():
        symbols = sorted(expr.free_symbols, key=lambda s: s.name)
        funcs[col] = (symbols, sp.lambdify(symbols, expr, modules=["scipy", "numpy"]))

    def compute(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        result = {}
        for col, (symbols, func) in funcs.items():
            values = func(*(frame[s.name].to_numpy() for s in symbols))
            result[col] = np.broadcast_to(np.asarray(values, dtype=np.float64), len(frame)).copy()
        return result

    return compute


def tabulate(
    compute: Compute,
    *,
    family: str,
    name: str,
    spec: Mapping[str, Any],
    seed: int,
    inputs: Sequence[str],
    targets: Sequence[str],
    meta: Mapping[str, Any],
) -> GeneratedData:
    """Sample train then test inputs from ``spec['ranges']``, compute outputs, build meta.

    ``meta`` adds family-specific keys (it must supply ``formula`` or ``generator`` and
    ``deviations``); the task kind is regression, or unsupervised when there are no targets.
    """
    rng = make_rng(seed)
    frames = []
    for split in ("train", "test"):
        frame = sample_uniform(rng, spec["ranges"], spec[f"n_{split}"])
        frame = frame.assign(**compute(frame))
        frames.append(frame[[*inputs, *targets]])
    full_meta = {
        "family": family,
        "name": name,
        "inputs": list(inputs),
        "targets": list(targets),
        "task": "regression" if targets else "unsupervised",
        "ranges": spec["ranges"],
        "n_train": spec["n_train"],
        "n_test": spec["n_test"],
        "seed": seed,
        "spec": dict(spec),
        **meta,
    }
    return GeneratedData(train=frames[0], test=frames[1], meta=full_meta)


def symbolic_data(
    task: SymbolicTask,
    *,
    family: str,
    name: str,
    spec: Mapping[str, Any],
    seed: int,
    deviations: Sequence[str] = (),
) -> GeneratedData:
    """``tabulate`` for a SymbolicTask: formula and data come from the same expressions.

    ``deviations`` (family-level choices) are recorded before the task's own.
    """
    return tabulate(
        lambdify_outputs(task.outputs),
        family=family,
        name=name,
        spec=spec,
        seed=seed,
        inputs=task.input_names,
        targets=task.target_names,
        meta={
            "formula": task.formula,
            "paper_shape": None if task.shape is None else list(task.shape),
            "deviations": [*deviations, *task.deviations],
        },
    )
