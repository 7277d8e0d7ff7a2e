"""Run ids: a stable hash of the canonical JSON of a configuration."""

from __future__ import annotations

from kan.records.ids import config_id


def test_config_id_is_a_stable_hash():
    assert config_id({"b": [1, 2], "a": 0.5}) == config_id({"a": 0.5, "b": [1, 2]})
    assert config_id({"a": 1}) == "015abd7f5cc5"  # sha256('{"a":1}')[:12]: ids never change silently
