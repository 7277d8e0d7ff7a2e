"""Quasiperiodic tight-binding models with mobility edges (paper §4.4).

Mosaic (kappa = 2), GAAM and MAAM on a ring of N = F_m sites with b = F_{m-1}/F_m (a
golden-ratio approximant, so the potential is periodic on the ring) and nearest-neighbour
hopping t = 1. Each diagonalisation (dense ``scipy.linalg.eigh``) of a Hamiltonian with
random parameters gives N eigenstates; every state becomes a row (E, parameters, fractal
dimension D, label) with label ``extended = D > threshold``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg
from threadpoolctl import threadpool_limits

from kan.data.io import GeneratedData
from kan.data.spec import lookup_task, make_rng, merge_spec

FAMILY = "anderson"
TWO_PI = 2 * float(np.pi)
MAX_SITES = 4181


@dataclass(frozen=True)
class Model:
    """Classifier inputs, sampled parameter ranges (in input order) and the exact edge."""

    inputs: tuple[str, ...]
    ranges: Mapping[str, tuple[float, float]]
    potential: str
    edge: str


TASKS: dict[str, Model] = {
    "mosaic": Model(
        ("E", "lambda"),
        {"lambda": (0.4, 6.0), "phi": (0.0, TWO_PI)},
        "V_n = lambda cos(2 pi b n + phi) on even n, 0 on odd n (kappa = 2)",
        "extended iff lambda |E| < 2",
    ),
    "gaam": Model(
        ("E", "alpha", "lambda", "phi"),
        {"alpha": (-0.9, 0.9), "lambda": (0.2, 1.8), "phi": (0.0, TWO_PI)},
        "V_n = 2 lambda cos(2 pi b n + phi) / (1 - alpha cos(2 pi b n + phi))",
        "extended iff alpha E < 2 sgn(lambda) (1 - |lambda|)",
    ),
    "maam": Model(
        ("E", "p", "lambda", "phi"),
        {"p": (0.5, 3.0), "lambda": (0.5, 6.0), "phi": (0.0, TWO_PI)},
        "V_n = lambda cos(2 pi b n + phi); hopping e^(-p (|n - n'| - 1)) between all pairs "
        "(ring distance), so the nearest-neighbour hopping t e^(-p) is 1",
        "extended iff E > lambda cosh(p) - e^p",
    ),
}

DEFAULTS: dict[str, Any] = {
    "n_sites": 233,
    "n_realizations": 25,
    "threshold": 0.5,
    "n_train": 4000,
    "n_test": 1000,
}

FIXED_DEVIATIONS = (
    "train and test states are drawn from the same pool of diagonalisations",
    "parameter ranges chosen to give roughly 20-50% extended states",
)


def deviations(spec: Mapping[str, Any]) -> list[str]:
    """Where this dataset departs from (or fills in) the paper, with the sizes ``spec`` sets."""
    n_sites = spec["n_sites"]
    sizes = (
        f"paper silent on N, sample counts, ranges and the D threshold: N = {n_sites} "
        f"(b = {round(fibonacci_ratio(n_sites) * n_sites)}/{n_sites}, periodic ring), {spec['n_realizations']} diagonalisations "
        f"per model, {spec['n_train']} train / {spec['n_test']} test states subsampled at random, "
        f"extended iff D > {spec['threshold']}"
    )
    return [sizes, *FIXED_DEVIATIONS]


def fibonacci_ratio(n_sites: int) -> float:
    """b = F_{m-1}/F_m for N = F_m; raises ValueError if N is not a Fibonacci number."""
    prev, cur = 1, 2
    while cur < n_sites:
        prev, cur = cur, prev + cur
    if cur != n_sites or n_sites < 13:
        raise ValueError(f"n_sites must be a Fibonacci number >= 13, got {n_sites}")
    return prev / cur


def hamiltonian(model: str, n_sites: int, params: Mapping[str, float]) -> np.ndarray:
    """Dense [N, N] Hamiltonian of ``model`` on the ring for one parameter set."""
    n = np.arange(n_sites)
    cos = np.cos(TWO_PI * fibonacci_ratio(n_sites) * n + params["phi"])
    gap = np.abs(n[:, None] - n[None, :])
    ring = np.minimum(gap, n_sites - gap)  # [N, N] distance on the ring
    if model == "maam":
        hopping = np.exp(-params["p"] * (ring - 1.0))
        np.fill_diagonal(hopping, 0.0)
        potential = params["lambda"] * cos
    else:
        hopping = (ring == 1).astype(np.float64)
        if model == "mosaic":
            potential = np.where(n % 2 == 0, params["lambda"] * cos, 0.0)
        else:
            potential = 2 * params["lambda"] * cos / (1 - params["alpha"] * cos)
    return hopping + np.diag(potential)


def ipr(states: np.ndarray) -> np.ndarray:
    """Inverse participation ratio of each column of ``states`` ([N, k] -> [k])."""
    weight = np.abs(states) ** 2
    return (weight**2).sum(axis=0) / weight.sum(axis=0) ** 2


def fractal_dimension(states: np.ndarray) -> np.ndarray:
    """D = -log(IPR) / log(N) per column: ~0 localized, ~1 extended."""
    return -np.log(ipr(states)) / np.log(states.shape[0])


def exact_extended(
    model: str, E: np.ndarray, params: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Boolean array: is a state at energy ``E`` extended according to the exact edge."""
    lookup_task(TASKS, model, family=FAMILY)
    E = np.asarray(E, dtype=np.float64)
    lam = np.asarray(params["lambda"], dtype=np.float64)
    if model == "mosaic":
        return lam * np.abs(E) < 2
    if model == "gaam":
        return np.asarray(params["alpha"]) * E < 2 * np.sign(lam) * (1 - np.abs(lam))
    p = np.asarray(params["p"], dtype=np.float64)
    return lam * np.cosh(p) - np.exp(p) < E


def edge_agreement(data: GeneratedData) -> float:
    """Fraction of (train + test) labels that agree with the exact mobility edge."""
    frame = pd.concat([data.train, data.test], ignore_index=True)
    exact = exact_extended(data.meta["name"], frame["E"].to_numpy(), frame)
    return float((exact == frame["extended"].to_numpy().astype(bool)).mean())


def generate(name: str, spec: dict | None, seed: int) -> GeneratedData:
    """Diagonalise ``n_realizations`` random Hamiltonians of model ``name``; label states."""
    model = lookup_task(TASKS, name, family=FAMILY)
    where = f"{FAMILY}/{name}"
    ranges = {var: list(bounds) for var, bounds in model.ranges.items()}
    spec = merge_spec({**DEFAULTS, "ranges": ranges}, spec, where=where)
    fibonacci_ratio(spec["n_sites"])
    if spec["n_sites"] > MAX_SITES or not 0 < spec["threshold"] < 1:
        raise ValueError(f"{where}: need n_sites <= {MAX_SITES} and 0 < threshold < 1")
    n_rows = spec["n_train"] + spec["n_test"]
    if n_rows > spec["n_realizations"] * spec["n_sites"]:
        raise ValueError(
            f"{where}: n_train + n_test = {n_rows} exceeds the "
            f"{spec['n_realizations'] * spec['n_sites']} states of n_realizations x n_sites"
        )
    rng = make_rng(seed)
    # one BLAS thread: these small eigh calls gain nothing from threads and slow down
    # by 10-50x when a busy machine oversubscribes OpenBLAS
    with threadpool_limits(1, user_api="blas"):
        frames = [_realization(name, spec, rng, r) for r in range(spec["n_realizations"])]
    pool = pd.concat(frames, ignore_index=True)
    chosen = rng.permutation(len(pool))[:n_rows]
    train = pool.iloc[np.sort(chosen[: spec["n_train"]])].reset_index(drop=True)
    test = pool.iloc[np.sort(chosen[spec["n_train"] :])].reset_index(drop=True)
    meta = {
        "family": FAMILY,
        "name": name,
        "inputs": list(model.inputs),
        "targets": ["extended"],
        "task": "classification",
        "n_classes": 2,
        "generator": (
            f"H = hopping + diag(V) on a ring of N = {spec['n_sites']} sites, "
            f"b = {fibonacci_ratio(spec['n_sites'])!r}; {model.potential}; label = 1 iff "
            f"D = -log(IPR)/log(N) > {spec['threshold']}"
        ),
        "exact_edge": model.edge,
        "ranges": spec["ranges"],
        "n_train": spec["n_train"],
        "n_test": spec["n_test"],
        "seed": seed,
        "spec": spec,
        "deviations": deviations(spec),
    }
    return GeneratedData(train=train, test=test, meta=meta)


def _realization(
    name: str, spec: Mapping[str, Any], rng: np.random.Generator, index: int
) -> pd.DataFrame:
    """All N eigenstates of one random Hamiltonian as rows."""
    params = {var: rng.uniform(lo, hi) for var, (lo, hi) in spec["ranges"].items()}
    energies, states = linalg.eigh(hamiltonian(name, spec["n_sites"], params))
    dims = fractal_dimension(states)
    rows = {"E": energies, **{var: np.full(len(energies), v) for var, v in params.items()}}
    return pd.DataFrame(
        {
            **rows,
            "D": dims,
            "extended": (dims > spec["threshold"]).astype(np.int64),
            "realization": np.full(len(energies), index, dtype=np.int64),
        }
    )
