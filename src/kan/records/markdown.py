"""Plain Markdown tables (no extra dependency) and the cell formats the reports share."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import pandas as pd

MISSING = "—"

Format = Callable[[Any], str]


def is_missing(value: Any) -> bool:
    """None, "" or NaN."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def sci(value: Any) -> str:
    """``1.23e-04``; a dash when missing."""
    return MISSING if is_missing(value) else f"{float(value):.2e}"


def fixed(value: Any) -> str:
    """``3.14``; a dash when missing."""
    return MISSING if is_missing(value) else f"{float(value):.2f}"


def text(value: Any) -> str:
    """The value as text (integral floats without decimals); a dash when missing."""
    if is_missing(value):
        return MISSING
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else sci(value)
    return str(value)


def markdown_table(frame: pd.DataFrame, formats: Mapping[str, Format] | None = None) -> str:
    """``frame`` as a Markdown table; ``formats`` maps column → formatter (default :func:`text`)."""
    formats = formats or {}
    columns = list(frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        cells = [formats.get(c, text)(v).replace("|", "\\|") for c, v in zip(columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
