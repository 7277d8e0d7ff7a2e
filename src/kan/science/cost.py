"""CPU time of a science experiment at full scale, measured on short probes.

Each experiment's :class:`Scaling` names its training-length knobs: step budgets and lists of
seeds (or a count of restarts) whose CPU time is linear in them, at most one knob per loop so
that no two scaled knobs multiply. A probe runs the experiment at its full settings with every
knob at a fraction f of its value (an integer ``f·v``, a list's first ``f·len`` entries) and
measures its CPU time; two probes give ``cost = fixed + slope·f``, extrapolated to f = 1. What
does not scale (data, symbolic fits, plots, evaluation of the results) lands in ``fixed``.

The datasets an experiment reads are generated once into folders, as the workflow's data jobs
do (their CPU time is reported separately and added to the estimate), and the probes read them.
Probes run in a scratch working directory: a knot download (``download: true``) is fetched
there, and without a network the knot data fall back to the local table, as they would in the
workflow here.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kan.data import generate_to_dir
from kan.data.knot_download import DOWNLOAD_DIR, fetch
from kan.science import registry


@dataclass(frozen=True)
class Scaling:
    """How an experiment's CPU time scales: ``knobs`` linear in it, the two probe ``fractions``,
    and early-stopped budgets priced at their maximum as extra steps of an identical training
    (``priced_with``: budget -> the knob it is added to; the budget itself is cut to 1 step)."""

    knobs: tuple[str, ...]
    fractions: tuple[float, float]
    priced_with: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


SCALINGS: dict[str, Scaling] = {
    "pde": Scaling(("kan_steps",), (0.02, 0.04),
                   note="every MLP trains kan_steps x len(kan_grids) steps, so it scales with kan_steps"),
    "continual": Scaling(("seeds",), (1 / 3, 2 / 3)),
    "interpretability": Scaling(("restarts",), (1 / 3, 2 / 3),
                                note="per task, the data and snapping the chosen KAN do not scale"),
    "unsupervised": Scaling(("seeds",), (1 / 7, 3 / 7)),
    "knots": Scaling(
        ("kan_steps", "mlp_converged_steps", "formula_steps", "unsup_seeds"), (0.01, 0.02),
        priced_with={"mlp_max_steps": "mlp_converged_steps"},
        note="the early-stopped MLP is priced at its max steps (mlp_max_steps), as more steps of the same MLP "
             "trained for mlp_converged_steps"),
    "localization": Scaling(("steps", "retrain_steps"), (0.1, 0.2),
                            note="grid updates (every 5 steps in the first half) scale with steps"),
}


def scaling(name: str) -> Scaling:
    """The :class:`Scaling` of science experiment ``name``; ValueError naming it when it has none."""
    if name not in SCALINGS:
        raise ValueError(f"science experiment '{name}' has no cost scaling rule: add one to "
                         f"kan.science.cost.SCALINGS (which knobs its CPU time is linear in)")
    return SCALINGS[name]


def scaled_count(knob: str, count: int, fraction: float) -> int:
    """``fraction · count``, which must be a whole number >= 1; ValueError naming ``knob`` otherwise."""
    scaled = fraction * count
    if round(scaled) < 1 or not math.isclose(scaled, round(scaled), abs_tol=1e-6):
        raise ValueError(f"{knob} = {count} x {fraction:g} = {scaled:g} is not a whole number >= 1; "
                         f"choose other probe fractions")
    return round(scaled)


def scale_value(knob: str, value: Any, fraction: float) -> Any:
    """An integer knob at ``fraction`` of its value, a list knob cut to its first ``fraction`` of entries."""
    if isinstance(value, (list, tuple)):
        return list(value[:scaled_count(knob, len(value), fraction)])
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{knob} must be an integer or a list to scale, got {value!r}")
    return scaled_count(knob, value, fraction)


def scaled_settings(name: str, settings: Mapping[str, Any], fraction: float) -> dict[str, Any]:
    """``settings`` of experiment ``name`` with its knobs (defaults included) at ``fraction`` of their
    value, early-stopped budgets folded into the knob that prices them (see :class:`Scaling`)."""
    rule = scaling(name)
    values = registry.resolve_settings(name, settings)
    scaled = dict(settings)
    for knob in rule.knobs:
        folded = sum(values[budget] for budget, into in rule.priced_with.items() if into == knob)
        value = values[knob] + folded if folded else values[knob]
        scaled[knob] = scale_value(knob, value, fraction)
    scaled |= dict.fromkeys(rule.priced_with, 1)
    return scaled


def fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """``(fixed, slope)`` of the least-squares line through ``(fraction, seconds)`` points (two or more
    distinct fractions)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        raise ValueError(f"need two distinct fractions, got {xs}")
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread
    return mean_y - slope * mean_x, slope


@dataclass(frozen=True)
class Estimate:
    """Probes of one experiment: data generation CPU seconds, (fraction, CPU seconds) per probe and
    what the datasets hold (:func:`describe`)."""

    name: str
    data_seconds: float
    probes: tuple[tuple[float, float], ...]
    datasets: tuple[str, ...] = ()

    @property
    def fixed(self) -> float:
        return fit_line(self.probes)[0]

    @property
    def slope(self) -> float:
        return fit_line(self.probes)[1]

    @property
    def seconds(self) -> float:
        """Estimated CPU seconds at full scale: data, then the run extrapolated to fraction 1."""
        return self.data_seconds + self.fixed + self.slope


def timed(action: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``action(*args)`` and the CPU seconds this process spent in it."""
    started = time.process_time()
    result = action(*args)
    return result, time.process_time() - started


def make_datasets(name: str, settings: Mapping[str, Any], root: Path) -> dict[str, Path]:
    """Generate the datasets science experiment ``name`` reads with ``settings`` into
    ``root/<family>/<name>`` as the workflow's data jobs do, after fetching the knot download into
    the working directory when one of them reads it."""
    requests = registry.datasets(name, settings)
    url = registry.resolve_settings(name, settings).get("download_url")
    if url is not None and any(r.spec.get("path") == DOWNLOAD_DIR for r in requests):
        fetch(url, DOWNLOAD_DIR)
    return {r.key: generate_to_dir(r.family, r.name, dict(r.spec), r.seed, root / r.key) for r in requests}


def describe(key: str, folder: Path) -> str:
    """``"<family>/<name>: n_train + n_test rows"`` of a dataset folder, and where knot rows came from."""
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    source = f" ({meta['deviations'][-1]})" if meta["family"] == "knot" else ""
    return f"{key}: {meta['n_train']} + {meta['n_test']} rows{source}"


def estimate(name: str, settings: Mapping[str, Any], work_dir: Path | str,
             fractions: Sequence[float] | None = None) -> Estimate:
    """Generate the data of experiment ``name`` and probe it at ``fractions`` (default: its rule's)
    inside ``work_dir``, which becomes the working directory meanwhile."""
    work_dir = Path(work_dir).resolve()
    fractions = scaling(name).fractions if fractions is None else fractions
    with contextlib.chdir(work_dir):
        folders, data = timed(make_datasets, name, settings, work_dir / "datasets")
        probes = tuple((f, timed(registry.run, name, scaled_settings(name, settings, f), work_dir / f"probe-{f:.4g}",
                                 folders)[1]) for f in fractions)
    return Estimate(name, data, probes, tuple(describe(k, f) for k, f in folders.items()))
