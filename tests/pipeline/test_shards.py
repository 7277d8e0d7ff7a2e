"""Shards of a profile: a partition of its jobs by name, stable and roughly balanced."""

import pytest

from kan.experiments.shards import in_shard, parse_shard, shard_index
from kan.experiments.sweep import chunks, expand


def test_shards_partition_the_paper_profile_chunks(load, repo):
    settings = load(repo / "workflow/config/paper.yaml")
    names = list(chunks(expand(settings), settings["chunk_size"])) + [f"science/{n}" for n in settings["science"]]
    parts = [in_shard(names, f"{k}/8") for k in range(1, 9)]
    assert sorted(n for part in parts for n in part) == sorted(names)  # every job exactly once
    sizes = [len(part) for part in parts]
    assert min(sizes) > 0.8 * len(names) / 8 and max(sizes) < 1.2 * len(names) / 8  # hash balance
    assert in_shard(names, "3/8") == in_shard(list(reversed(names)), "3/8")[::-1]  # order kept, no state


def test_shard_of_a_name_does_not_depend_on_the_other_names():
    assert shard_index("feynman/I.6.20/0", 8) == shard_index("feynman/I.6.20/0", 8)
    assert in_shard(["feynman/I.6.20/0"], f"{shard_index('feynman/I.6.20/0', 8)}/8") == ["feynman/I.6.20/0"]
    assert all(in_shard([n], "1/1") == [n] for n in ("a", "b"))


@pytest.mark.parametrize("bad", ["0/8", "9/8", "3", "3/0", "a/b", "-1/2", ""])
def test_bad_shard_is_named(bad):
    with pytest.raises(ValueError, match="shard must be 'k/N'"):
        parse_shard(bad)
