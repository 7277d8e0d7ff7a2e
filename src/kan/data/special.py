"""The 15 special functions of the paper's table (§3.2), evaluated with scipy.special.

Inputs are named ``x`` and ``y`` as in the paper's ``f(x, y)`` notation. The paper states
neither ranges nor how multi-output/complex functions become one real target; our
choices are recorded per task in ``meta['deviations']``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from kan.data.io import GeneratedData
from kan.data.sampling import SIZE_NOTE, default_spec, ranges_note, tabulate
from kan.data.spec import lookup_task, merge_spec

FAMILY = "special"
PI = float(np.pi)
ORDER = (0.0, 2.0)  # order / degree ranges of the Bessel and Legendre functions


@dataclass(frozen=True)
class SpecialTask:
    """``func(x, y)`` -> real target; ``formula`` says which scipy call that is."""

    func: Callable[[np.ndarray, np.ndarray], np.ndarray]
    ranges: Mapping[str, tuple[float, float]]
    formula: str
    why: str

    def defaults(self) -> dict:
        return default_spec(self.ranges)


def _lpmv(m: int) -> SpecialTask:
    return SpecialTask(
        lambda x, y: special.lpmv(m, x, y),
        {"x": ORDER, "y": (-0.8, 0.8)},
        f"scipy.special.lpmv({m}, x, y)  (degree x, argument y)",
        "|y| <= 0.8: non-integer degrees diverge at y = -1",
    )


def _sph_harm(m: int, n: int) -> SpecialTask:
    return SpecialTask(
        lambda x, y: special.sph_harm_y(n, m, y, x).real,
        {"x": (0.0, 2 * PI), "y": (0.0, PI)},
        f"Re scipy.special.sph_harm_y({n}, {m}, y, x)  (= Re sph_harm({m}, {n}, x, y) of "
        "older SciPy: x azimuth, y polar angle)",
        "real part of the complex harmonic (exactly real for m = 0); natural domains "
        "x in [0, 2pi], y in [0, pi]",
    )


TASKS: dict[str, SpecialTask] = {
    "ellipj": SpecialTask(
        lambda x, y: special.ellipj(x, y)[0],
        {"x": (-2.0, 2.0), "y": (0.0, 1.0)},
        "scipy.special.ellipj(x, y)[0]  (sn(u = x | m = y))",
        "target is sn, the first of ellipj's four outputs (sn, cn, dn, ph)",
    ),
    "ellipkinc": SpecialTask(
        special.ellipkinc,
        {"x": (-PI / 2, PI / 2), "y": (0.0, 0.9)},
        "scipy.special.ellipkinc(x, y)  (F(phi = x | m = y))",
        "m <= 0.9 keeps F away from its m = 1 divergence",
    ),
    "ellipeinc": SpecialTask(
        special.ellipeinc,
        {"x": (-PI / 2, PI / 2), "y": (0.0, 0.9)},
        "scipy.special.ellipeinc(x, y)  (E(phi = x | m = y))",
        "same domain as ellipkinc",
    ),
    "jv": SpecialTask(
        special.jv, {"x": ORDER, "y": (0.0, 5.0)}, "scipy.special.jv(x, y)  (order x)",
        "argument y >= 0 keeps non-integer orders real",
    ),
    "yv": SpecialTask(
        special.yv, {"x": ORDER, "y": (1.0, 5.0)}, "scipy.special.yv(x, y)  (order x)",
        "argument y >= 1 keeps Y_v away from its divergence at 0",
    ),
    "kv": SpecialTask(
        special.kv, {"x": ORDER, "y": (1.0, 3.0)}, "scipy.special.kv(x, y)  (order x)",
        "argument y >= 1 keeps K_v away from its divergence at 0",
    ),
    "iv": SpecialTask(
        special.iv, {"x": ORDER, "y": (0.0, 2.0)}, "scipy.special.iv(x, y)  (order x)",
        "argument y >= 0 keeps non-integer orders real",
    ),
    "lpmv_m0": _lpmv(0),
    "lpmv_m1": _lpmv(1),
    "lpmv_m2": _lpmv(2),
    "sph_harm_m0_n1": _sph_harm(0, 1),
    "sph_harm_m1_n1": _sph_harm(1, 1),
    "sph_harm_m0_n2": _sph_harm(0, 2),
    "sph_harm_m1_n2": _sph_harm(1, 2),
    "sph_harm_m2_n2": _sph_harm(2, 2),
}


def generate(name: str, spec: dict | None, seed: int) -> GeneratedData:
    """Generate special-function task ``name`` (e.g. ``"jv"``) with ``spec`` overrides."""
    task = lookup_task(TASKS, name, family=FAMILY)
    merged = merge_spec(task.defaults(), spec, where=f"{FAMILY}/{name}")

    def compute(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        values = task.func(frame["x"].to_numpy(), frame["y"].to_numpy())
        return {"target": np.asarray(values, dtype=np.float64)}

    deviations = [SIZE_NOTE, ranges_note(task.ranges, task.why)]
    return tabulate(
        compute,
        family=FAMILY,
        name=name,
        spec=merged,
        seed=seed,
        inputs=("x", "y"),
        targets=("target",),
        meta={"formula": task.formula, "deviations": deviations},
    )
