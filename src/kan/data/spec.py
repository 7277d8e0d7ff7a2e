"""Spec validation shared by every data family.

A task's defaults live in code; a user spec may only override keys that the defaults
already have. ``merge_spec`` returns the validated, JSON-ready merged spec.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np

MAX_SIZE = 10_000_000  # larger sample counts / sizes are taken as a typo


def lookup_task(tasks: Mapping[str, Any], name: str, *, family: str) -> Any:
    """Return ``tasks[name]`` or raise ValueError listing the valid task names."""
    if name not in tasks:
        raise ValueError(
            f"unknown task '{name}' for family '{family}'; valid tasks: {', '.join(tasks)}"
        )
    return tasks[name]


def make_rng(seed: int) -> np.random.Generator:
    """A fresh generator for a non-negative integer seed (no global random state)."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def merge_spec(
    defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None, *, where: str
) -> dict[str, Any]:
    """Overlay ``overrides`` on ``defaults`` and validate every value.

    Rules: unknown keys are rejected; ``ranges`` maps variable -> [lo, hi] with finite
    lo < hi and may override a subset of the default variables; keys starting with
    ``n_`` are sizes (integers in [1, MAX_SIZE]); other values must have the type of
    their default (an int is accepted where a float is expected).
    """
    overrides = {} if overrides is None else overrides
    if not isinstance(overrides, Mapping):
        raise ValueError(f"spec for {where} must be a mapping, got {type(overrides).__name__}")
    for key in overrides:
        if key not in defaults:
            raise ValueError(
                f"unknown key '{key}' in spec for {where}; valid keys: {', '.join(defaults)}"
            )
    merged: dict[str, Any] = {}
    for key, default in defaults.items():
        value = overrides.get(key, default)
        if key == "ranges":
            merged[key] = _check_ranges(default, value, where)
        else:
            merged[key] = _check_value(key, default, value, where)
    return merged


def _check_ranges(
    default: Mapping[str, Any], value: Any, where: str
) -> dict[str, list[float]]:
    if not isinstance(value, Mapping):
        raise ValueError(f"'ranges' in spec for {where} must be a mapping of var -> [lo, hi]")
    unknown = [var for var in value if var not in default]
    if unknown:
        raise ValueError(
            f"unknown variable '{unknown[0]}' in ranges for {where}; "
            f"valid variables: {', '.join(default)}"
        )
    merged = {var: value.get(var, bounds) for var, bounds in default.items()}
    return {var: _check_interval(var, bounds, where) for var, bounds in merged.items()}


def _check_interval(var: str, bounds: Any, where: str) -> list[float]:
    ok = (
        isinstance(bounds, (list, tuple))
        and len(bounds) == 2
        and all(isinstance(b, Real) and not isinstance(b, bool) for b in bounds)
    )
    if not ok:
        raise ValueError(f"range of '{var}' for {where} must be [lo, hi], got {bounds!r}")
    lo, hi = float(bounds[0]), float(bounds[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise ValueError(
            f"bad range of '{var}' for {where}: need finite lo < hi, got [{lo}, {hi}]"
        )
    return [lo, hi]


def _check_value(key: str, default: Any, value: Any, where: str) -> Any:
    if key.startswith("n_"):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise ValueError(f"'{key}' in spec for {where} must be an integer, got {value!r}")
        if not 1 <= value <= MAX_SIZE:
            raise ValueError(
                f"'{key}' in spec for {where} must be in [1, {MAX_SIZE}], got {value}"
            )
        return int(value)
    if isinstance(default, bool) or not isinstance(default, Real):
        if type(value) is not type(default):
            raise ValueError(
                f"'{key}' in spec for {where} must be {type(default).__name__}, got {value!r}"
            )
        return copy.deepcopy(value)
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"'{key}' in spec for {where} must be a finite number, got {value!r}")
    if isinstance(default, Integral) and not isinstance(value, Integral):
        raise ValueError(f"'{key}' in spec for {where} must be an integer, got {value!r}")
    return type(default)(value)
