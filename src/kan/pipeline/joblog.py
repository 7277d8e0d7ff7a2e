"""What every Snakemake job does first and last: send its log records to the job's log file and
write its JSON output. Standard library only, so a job that needs neither torch nor sympy (data
generation, tables, reports) does not import them to set up its log."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any


def setup_logging(path: Path | str | None) -> None:
    """Send this job's log records to ``path`` (stderr when None)."""
    logging.basicConfig(filename=path, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def write_json(path: Path | str, payload: Any) -> None:
    """Write ``payload`` as indented JSON (creating parent folders)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
