"""Shards of a profile: a partition of its jobs that keeps each dataset's chunks together; the
shard table's CPU hours."""

import json

import pandas as pd
import pytest

from kan.experiments.progress import data_definitions, shard_table
from kan.experiments.sweep import chunks, expand
from kan.records import publish
from kan.records.provenance import DATA_DEFINITION, code_fingerprint, machine_kind
from kan.records.shards import group_count, in_shard, job_group, parse_shard, parse_shards, shard_groups, shard_of


@pytest.fixture(scope="module")
def paper_jobs(load, repo):
    settings = load(repo / "workflow/config/paper.yaml")
    return list(chunks(expand(settings), settings["chunk_size"])) + [f"science:{n}" for n in settings["science"]]


def test_shards_partition_the_paper_profile_jobs(paper_jobs):
    parts = [in_shard(paper_jobs, f"{k}/8") for k in range(1, 9)]
    assert sorted(n for part in parts for n in part) == sorted(paper_jobs)  # every job exactly once
    assert in_shard(paper_jobs, "3/8") == in_shard(list(reversed(paper_jobs)), "3/8")[::-1]  # order kept, no state


def test_a_dataset_never_spans_two_shards(paper_jobs):
    shards = shard_of(paper_jobs, 8)
    by_group: dict[str, set[int]] = {}
    for name, shard in shards.items():
        by_group.setdefault(job_group(name), set()).add(shard)
    assert all(len(found) == 1 for found in by_group.values())
    assert {job_group("feynman/I.6.20/3"), job_group("science:pde")} == {"feynman/I.6.20", "science:pde"}


def test_one_group_per_shard_at_the_group_count(paper_jobs):
    count = group_count(paper_jobs)
    groups = shard_groups(paper_jobs, count)
    assert all(len(members) == 1 for members in groups.values())
    assert sorted(g for members in groups.values() for g in members) == sorted({job_group(n) for n in paper_jobs})
    sizes = [len(members) for members in shard_groups(paper_jobs, 8).values()]
    assert max(sizes) - min(sizes) <= 1  # groups dealt in turn


@pytest.mark.parametrize("bad", ["0/8", "9/8", "3", "3/0", "a/b", "-1/2", ""])
def test_bad_shard_is_named(bad):
    with pytest.raises(ValueError, match="shard must be 'k/N'"):
        parse_shard(bad)


@pytest.mark.parametrize("bad", ["", ",", "3/8,", "3/8,9/8", "3/8;5/8"])
def test_a_bad_shard_list_is_named(bad):
    with pytest.raises(ValueError, match="shard must be 'k/N'"):
        parse_shards(bad)


def test_a_shard_that_selects_nothing_is_named(paper_jobs):
    groups = group_count(paper_jobs)
    assert in_shard(paper_jobs, f"{groups}/{groups + 5}")  # the last shard that holds a group
    with pytest.raises(ValueError, match=rf"shard {groups + 1}/{groups + 5} selects no job: the profile has {groups} "):
        in_shard(paper_jobs, f"3/{groups + 5},{groups + 1}/{groups + 5}")


def test_several_shards_run_the_union_of_their_jobs_in_order(paper_jobs):
    assert parse_shards(" 3/8, 5/8 ") == [(3, 8), (5, 8)]
    both = in_shard(paper_jobs, "3/8,5/8")
    assert set(both) == set(in_shard(paper_jobs, "3/8")) | set(in_shard(paper_jobs, "5/8"))
    assert both == [name for name in paper_jobs if name in set(both)]  # the profile's order
    assert in_shard(paper_jobs, ",".join(f"{k}/54" for k in range(1, 55))) == paper_jobs


def test_a_shards_cpu_hours_sum_cpu_seconds_and_wall_seconds_only_where_a_record_lacks_them(tiny_sweep, tmp_path):
    """Per current training its longest run's CPU seconds (wall seconds for a record without them),
    plus each current science experiment's."""
    machine, definitions = machine_kind(), data_definitions(tiny_sweep)
    rows = [{"run_id": s.run_id, "status": "ok", "steps": s.phases, "machine": machine, "code_fingerprint": code_fingerprint(),
             DATA_DEFINITION: definitions[t.family, t.dataset], "seconds": 3600.0 * s.phases,
             "cpu_seconds": 1800.0 * s.phases} for t in tiny_sweep for s in t.stages]
    lacking = tiny_sweep[0].stages[-1].run_id
    for row in rows:
        row["cpu_seconds"] = float("nan") if row["run_id"] == lacking else row["cpu_seconds"]
    pd.DataFrame(rows).to_parquet(tmp_path / publish.RUNS, index=False)
    science = tmp_path / publish.SCIENCE / "continual"
    science.mkdir(parents=True)
    record = {"machine": machine, "code_fingerprint": code_fingerprint(machine, "continual"), "seconds": 7200.0,
              "cpu_seconds": 3600.0}
    (science / "run.json").write_text(json.dumps(record))
    table = shard_table(tiny_sweep, 4, ["continual"], tmp_path, 1)
    assert table.loc[0, ["trainings", "current", "science_current"]].tolist() == [len(tiny_sweep), len(tiny_sweep), 1]
    longest = {t.stages[-1].run_id: t.stages[-1].phases for t in tiny_sweep}
    expected = sum((3600.0 if run_id == lacking else 1800.0) * phases for run_id, phases in longest.items()) + 3600.0
    assert table.loc[0, "cpu_hours"] == round(expected / 3600, 2)
