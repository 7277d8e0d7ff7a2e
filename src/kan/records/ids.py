"""Stable identifiers: a short hash of the canonical JSON of a run's full configuration."""

from __future__ import annotations

import hashlib
import json
from typing import Any

ID_LENGTH = 12


def canonical_json(payload: Any) -> str:
    """JSON with sorted keys and no whitespace: equal configurations give equal text."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_id(payload: Any) -> str:
    """The first ``ID_LENGTH`` hex digits of the sha256 of ``canonical_json(payload)``."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:ID_LENGTH]
