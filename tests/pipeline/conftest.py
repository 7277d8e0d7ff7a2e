"""Fixtures of the pipeline tests that read the published paper run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from kan.pipeline.cli import PAPER_CONFIG

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def paper_settings(load: Callable[[Any], dict]) -> dict:
    """The paper profile's validated config."""
    return load(ROOT / PAPER_CONFIG)
