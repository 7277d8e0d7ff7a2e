"""Shards: one profile's jobs split into ``count`` parts that run one at a time and add up.

A shard is written ``"k/N"`` (1 <= k <= N). A job belongs to shard k when the first 8 hex digits
of the sha256 of its name, modulo N, equal k - 1: the split depends only on the names (train
chunks ``<experiment>/<dataset>/<index>``, science experiments ``science/<name>``), so every
shard can be run on any machine, in any order, and the N shards together hold every job once.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

_SHARD = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"k/N"`` as ``(k, N)``; ValueError naming the expected form."""
    match = _SHARD.match(str(text).strip())
    if not match or int(match.group(1)) > int(match.group(2)):
        raise ValueError(f"shard must be 'k/N' with 1 <= k <= N (e.g. '3/8'), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def shard_index(name: str, count: int) -> int:
    """The shard (1..count) that job ``name`` belongs to."""
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16) % count + 1


def in_shard(names: Iterable[str], shard: str) -> list[str]:
    """The names of ``names`` that belong to ``shard`` (``"k/N"``), in their order."""
    index, count = parse_shard(shard)
    return [name for name in names if shard_index(name, count) == index]
