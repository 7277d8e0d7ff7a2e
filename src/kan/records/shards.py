"""Shards: one profile's jobs split into ``count`` parts that run one at a time and add up.

A shard is written ``"k/N"`` (1 <= k <= N). Jobs are split by *group*: the train chunks of one
dataset (``<experiment>/<dataset>/<index>`` -> ``<experiment>/<dataset>``) stay together, and a
science experiment (``science:<name>``) is a group of its own. The groups, sorted by name, are dealt
to the shards in turn (group i to shard i mod N + 1), so a finished shard completes whole datasets
and the report can compare them. With N = the number of groups (:func:`group_count`), every shard
is one dataset or one science experiment. The split depends only on the profile's job names, so
every shard can run on any machine, in any order, and the N shards together hold every job once.
Several shards, ``"k1/N,k2/N"``, run together (:func:`in_shard`): what is left of a run, say.
"""

from __future__ import annotations

import re
from typing import Iterable

_SHARD = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"k/N"`` as ``(k, N)``; ValueError naming the expected form."""
    match = _SHARD.match(str(text).strip())
    if not match or int(match.group(1)) > int(match.group(2)):
        raise ValueError(f"shard must be 'k/N' with 1 <= k <= N (e.g. '3/8'), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_shards(text: str) -> list[tuple[int, int]]:
    """``"k/N"`` or several, comma-separated (``"3/54,10/54"``), as ``[(k, N), ...]``; ValueError
    naming the expected form."""
    return [parse_shard(part) for part in str(text).split(",")]


def job_group(name: str) -> str:
    """The group of job ``name``: a train chunk's ``<experiment>/<dataset>``, else the name itself."""
    return name.rsplit("/", 1)[0] if name.count("/") == 2 else name


def group_count(names: Iterable[str]) -> int:
    """How many groups ``names`` fall into: the N that gives each shard one group."""
    return len({job_group(name) for name in names})


def shard_of(names: Iterable[str], count: int) -> dict[str, int]:
    """The shard (1..``count``) of every name in ``names``."""
    names = list(names)
    position = {group: i for i, group in enumerate(sorted({job_group(name) for name in names}))}
    return {name: position[job_group(name)] % count + 1 for name in names}


def shard_groups(names: Iterable[str], count: int) -> dict[int, list[str]]:
    """Per shard (1..``count``), the sorted groups it runs."""
    groups: dict[int, set[str]] = {k: set() for k in range(1, count + 1)}
    for name, shard in shard_of(names, count).items():
        groups[shard].add(job_group(name))
    return {k: sorted(members) for k, members in groups.items()}


def in_shard(names: Iterable[str], shard: str) -> list[str]:
    """The names of ``names`` that belong to ``shard`` (``"k/N"``, or several: :func:`parse_shards`),
    in their order; ValueError for a shard that selects nothing (k above the number of groups)."""
    names = list(names)
    wanted = parse_shards(shard)
    groups = group_count(names)
    empty = [f"{index}/{count}" for index, count in wanted if index > groups]
    if empty:  # shard_of deals the groups in turn: shard k holds one exactly when k <= the group count
        raise ValueError(f"shard {', '.join(empty)} selects no job: the profile has {groups} groups "
                         f"(datasets and science experiments), so k must be at most {groups}")
    shards = {count: shard_of(names, count) for count in {count for _, count in wanted}}
    return [name for name in names if any(shards[count][name] == index for index, count in wanted)]
