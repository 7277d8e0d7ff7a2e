"""The paper's reported numbers (``reports/reference/paper.yaml``): loading and validation.

Every block but ``paper`` names its ``source``. Blocks compared with our runs hold ``rows``
keyed by ``dataset`` (and ``shape`` where one dataset has several shapes). Anywhere in the
file: ``*_shape`` cells are lists of positive integers, ``*_rmse`` / ``*_exponent`` cells are
positive numbers, ``*accuracy`` cells are fractions in [0, 1], and the ``uncertain`` (⚑) and
``approximate`` lists name cells of the same mapping, as do the keys of an ``ours`` mapping
(cell -> our science summary metric, see :mod:`kan.reporting.science`). A mapping whose numbers
have no counterpart says why in ``not_compared`` (a sentence), and the report lists it. A block's
``checks`` are the paper's claims as bounds on our metrics (:func:`_check_problems`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import yaml

BLOCKS = (
    "paper", "special_functions", "feynman", "toy_scaling", "grid_extension", "pde",
    "continual_learning", "interpretability", "unsupervised", "knot", "anderson", "speed",
)
FLAG_LISTS = ("uncertain", "approximate")
OURS = "ours"
NOT_COMPARED = "not_compared"  # the reason a paper cell of this mapping has no counterpart of ours

Reference = dict[str, Any]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell_problem(key: str, value: Any) -> str | None:
    """What is wrong with one cell, judged by its key's suffix (None if fine)."""
    if key.endswith("_shape"):
        ok = isinstance(value, list) and len(value) >= 2 and all(isinstance(n, int) and n > 0 for n in value)
        return None if ok else "expected a shape: a list of >= 2 positive integers"
    if key.endswith(("_rmse", "_exponent")) or key == "tolerance_factor":
        return None if _is_number(value) and value > 0 else "expected a positive number"
    if key.endswith("accuracy"):
        return None if _is_number(value) and 0 <= value <= 1 else "expected a fraction in [0, 1]"
    return None


def _walk(node: Any, where: str) -> Iterator[str]:
    """Every problem in ``node`` and below, each prefixed with its location."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, f"{where}[{index}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        problem = _cell_problem(str(key), value)
        if problem:
            yield f"{where}.{key}: {problem}, got {value!r}"
        if key in FLAG_LISTS or key == OURS or (key == NOT_COMPARED and not isinstance(value, str)):
            unknown = [name for name in value if name not in node] if isinstance(value, (list, dict)) else [value]
            if unknown:
                yield f"{where}.{key}: names no cell of this mapping: {unknown}"
        if key in (OURS, NOT_COMPARED):
            strings = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
            if not strings and not (key == NOT_COMPARED and isinstance(value, str)):
                yield f"{where}.{key}: expected a mapping of cell -> " + ("metric name" if key == OURS else "reason")
            continue
        yield from _walk(value, f"{where}.{key}")


def _row_problems(block: str, rows: Any) -> Iterator[str]:
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        yield f"{block}.rows: expected a list of mappings"
        return
    seen = set()
    for index, row in enumerate(rows):
        if not isinstance(row.get("dataset"), str):
            yield f"{block}.rows[{index}]: needs a 'dataset' name"
        key = (row.get("dataset"), str(row.get("shape")))
        if key in seen:
            yield f"{block}.rows[{index}]: duplicate row {key}"
        seen.add(key)


def _check_problems(block: str, checks: Any) -> Iterator[str]:
    """A ``checks`` entry is a ``claim`` with either a ``metric`` and one bound (``at_least`` or
    ``at_most``: a number or another metric) or the reason it is not checked (``not_compared``)."""
    if not isinstance(checks, list) or not all(isinstance(check, dict) for check in checks):
        yield f"{block}.checks: expected a list of mappings"
        return
    for index, check in enumerate(checks):
        where = f"{block}.checks[{index}]"
        bounds = [key for key in ("at_least", "at_most") if key in check]
        if not isinstance(check.get("claim"), str) or not check["claim"].strip():
            yield f"{where}: needs a 'claim' (the paper's words)"
        if ("metric" in check) == (NOT_COMPARED in check):
            yield f"{where}: needs either a 'metric' to check or a '{NOT_COMPARED}' reason, not both"
        elif "metric" in check and len(bounds) != 1:
            yield f"{where}: needs exactly one bound, 'at_least' or 'at_most', got {bounds or 'none'}"
        elif bounds and not (isinstance(check[bounds[0]], str) or _is_number(check[bounds[0]])):
            yield f"{where}.{bounds[0]}: expected a number or a metric name, got {check[bounds[0]]!r}"


def validate_reference(reference: Any) -> list[str]:
    """Every problem found in a loaded reference (an empty list when it is valid)."""
    if not isinstance(reference, dict):
        return ["the reference must be a mapping of blocks"]
    problems = [f"missing block '{name}'" for name in BLOCKS if name not in reference]
    for name, block in reference.items():
        if name == "paper":
            continue
        if not isinstance(block, dict):
            problems.append(f"{name}: expected a mapping")
            continue
        if not isinstance(block.get("source"), str) or not block["source"].strip():
            problems.append(f"{name}: needs a 'source' (arXiv id, section, table or figure)")
        if "checks" in block:
            problems += _check_problems(name, block["checks"])
        if "rows" in block:
            problems += _row_problems(name, block["rows"])
            if "tolerance_factor" not in block or not (_is_number(block["tolerance_factor"]) and block["tolerance_factor"] > 1):
                problems.append(f"{name}: blocks with rows need a tolerance_factor > 1")
    problems += _walk(reference, "reference")
    return problems


def load_reference(path: str | Path) -> Reference:
    """Read and validate the reference YAML; ValueError lists every problem."""
    path = Path(path)
    reference = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems = validate_reference(reference)
    if problems:
        raise ValueError(f"{path}: invalid reference:\n  " + "\n  ".join(problems))
    return reference
