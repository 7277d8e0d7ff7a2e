"""datasets/README.md states the sampled ranges of every Feynman equation and special function
exactly as the generators define them (``kan.data.feynman.TASKS``, ``kan.data.special.TASKS``)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from kan.data import feynman, special

README = Path(__file__).resolve().parents[2] / "datasets" / "README.md"
GREEK = {"θ": "theta", "σ": "sigma", "α": "alpha", "β": "beta", "δ": "delta"}
GROUP = re.compile(r"([^∈\[\]]+?)\s*∈\s*\[([^,\]]+),([^\]]+)\]")


def _number(text: str) -> float:
    """A bound as the README writes it: -1, 0.5, π/2, -π, 2π."""
    text = text.strip().replace("−", "-")
    sign = -1.0 if text.startswith("-") else 1.0
    factor, _, divisor = text.lstrip("-").partition("/")
    value = float(factor.replace("π", "") or 1) * (math.pi if "π" in factor else 1.0)
    return sign * value / float(divisor or 1)


def _names(text: str) -> list[str]:
    """Variable names of a group: "a, c..f" -> a, c, d, e, f; Greek letters spelled out."""
    names = []
    for token in (t.strip() for t in text.strip(" ,").split(",")):
        token = "".join(GREEK.get(ch, ch) for ch in token)
        first, dots, last = token.partition("..")
        names += [chr(code) for code in range(ord(first), ord(last) + 1)] if dots else [token]
    return names


def documented_ranges(cell: str) -> dict[str, tuple[float, float]]:
    """{variable: (lo, hi)} of a README ranges cell such as "b ∈ [-1, 0.5], a, c..f ∈ [-1, 1]"."""
    cell = re.sub(r"\([^)]*\)", "", cell)  # remarks in parentheses: "(azimuth)"
    return {name: (_number(lo), _number(hi)) for names, lo, hi in GROUP.findall(cell) for name in _names(names)}


def table_rows(heading: str) -> dict[str, str]:
    """task name -> ranges cell of the first table under ``heading`` (ranges: the third column;
    a first cell naming several tasks in backticks gives each the same ranges)."""
    lines = README.read_text(encoding="utf-8").split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = {}
    for line in lines[start + 2:]:  # after the header and its rule
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        for name in re.findall(r"`([^`]+)`", cells[0]) or [cells[0]]:
            rows[name] = cells[2]
    return rows



def cell_for(name: str, rows: dict[str, str]) -> str | None:
    """The ranges cell of task ``name``: its own row, or a row whose name is a pattern with
    {m} and {n} for digits ("sph_harm_m{m}_n{n}")."""
    patterns = {re.sub(r"\\\{[mn]\\\}", r"\\d", re.escape(key)): cell for key, cell in rows.items() if "{" in key}
    return rows.get(name) or next((cell for pattern, cell in patterns.items() if re.fullmatch(pattern, name)), None)

@pytest.mark.parametrize(("heading", "tasks"), [
    ("## Feynman equations", feynman.TASKS),
    ("## Special functions", special.TASKS),
])
def test_the_readme_gives_every_generators_ranges(heading, tasks):
    rows = table_rows(heading)
    expanded = {name: cell_for(name, rows) for name in tasks}
    assert not [name for name, cell in expanded.items() if cell is None], "tasks the README's table leaves out"
    wrong = {}
    for name, cell in expanded.items():
        documented, defined = documented_ranges(cell), dict(tasks[name].ranges)
        if documented.keys() != defined.keys() or not all(
                math.isclose(bound, other, abs_tol=1e-12)
                for key in defined for bound, other in zip(documented[key], defined[key])):
            wrong[name] = (documented, defined)
    assert not wrong, f"datasets/README.md ({heading}) against the code: {wrong}"


def test_a_ranges_cell_reads_as_written():
    assert documented_ranges("b ∈ [-1, 0.5], a, c..f ∈ [-1, 1]") == {
        "b": (-1.0, 0.5), "a": (-1.0, 1.0), "c": (-1.0, 1.0), "d": (-1.0, 1.0), "e": (-1.0, 1.0), "f": (-1.0, 1.0)}
    assert documented_ranges("x ∈ [0, 2π] (azimuth), y ∈ [0, π] (polar)") == {"x": (0.0, 2 * math.pi), "y": (0.0, math.pi)}
    assert documented_ranges("θ, θ1 ∈ [-1, 1], σ ∈ [0.5, 2]") == {"theta": (-1.0, 1.0), "theta1": (-1.0, 1.0), "sigma": (0.5, 2.0)}
    assert documented_ranges("n ∈ [0, 0.9], θ2 ∈ [-π/2, π/2]")["theta2"] == (-math.pi / 2, math.pi / 2)
