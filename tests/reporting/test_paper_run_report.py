"""The paper-run report's status: what the published records hold, in all and per experiment."""

from __future__ import annotations

import pandas as pd
import pytest

from kan.reporting.paper_run import cpu_hours_left, experiment_totals, status_lines, total_cpu_hours_left

AMD, INTEL = "x86_64-AuthenticAMD-avx2", "x86_64-GenuineIntel-avx512"


def _shards() -> pd.DataFrame:
    rows = [("1/4", "feynman/I.6.20", 93, 93, 0, 0, 0, 0, f"{AMD} {INTEL}", True, 0.75),
            ("2/4", "feynman/I.9.18", 93, 10, 0, 83, 0, 0, INTEL, False, 0.25),
            ("3/4", "science:knots", 0, 0, 0, 0, 1, 1, AMD, True, 3.5),
            ("4/4", "special/jv", 75, 0, 0, 75, 0, 0, None, False, 0.0)]
    columns = ["shard", "groups", "trainings", "current", "stale", "missing", "science", "science_current", "machines",
               "complete", "cpu_hours"]
    return pd.DataFrame(rows, columns=columns)


def test_totals_per_experiment_add_up_to_the_whole_run():
    totals = experiment_totals(_shards()).set_index("experiment")
    assert list(totals.index) == ["feynman", "science", "special", "all"]
    assert totals.loc["feynman", "shards complete"] == "1 of 2"
    assert totals.loc["feynman", "trainings current"] == "103 of 186"
    assert totals.loc["feynman", "CPU hours"] == "1.0"
    assert totals.loc["feynman", "machine kinds"] == f"{AMD}, {INTEL}"
    assert totals.loc["science", "science current"] == "1 of 1"
    assert totals.loc["special", "machine kinds"] == "—"  # nothing computed yet
    assert totals.loc["all"].to_dict() == {"shards complete": "2 of 4", "trainings current": "103 of 261",
                                           "science current": "1 of 1", "CPU hours": "4.5",
                                           "CPU hours left (est.)": "—", "machine kinds": f"{AMD}, {INTEL}"}


def test_a_shard_of_several_experiments_is_counted_under_all_their_names():
    """Publishing with --shards N below the number of groups puts several datasets in one shard."""
    shards = _shards()
    shards.loc[1, "groups"] = "feynman/I.9.18 special/jv"
    totals = experiment_totals(shards).set_index("experiment")
    assert list(totals.index) == ["feynman", "feynman + special", "science", "special", "all"]
    assert totals.loc["feynman", "trainings current"] == "93 of 93"  # I.6.20's shard only
    assert totals.loc["feynman + special", "trainings current"] == "10 of 93"


def test_the_cpu_hours_left_come_from_the_complete_shards_rate_per_experiment():
    totals = experiment_totals(_shards()).set_index("experiment")["CPU hours left (est.)"]
    assert totals["feynman"] == f"{83 * 0.75 / 93:.1f}"  # 83 missing at I.6.20's 0.75 h per 93 trainings
    assert totals["science"] == "0.0"
    assert totals["special"] == "—"  # no complete special-function shard gives a rate
    assert totals["all"] == "—"


def test_cpu_hours_left_add_up_once_every_experiment_has_a_rate_and_vanish_when_done():
    shards = _shards()
    shards.loc[3, ["current", "missing", "complete", "cpu_hours"]] = [75, 0, True, 0.5]
    left = 83 * 0.75 / 93
    assert total_cpu_hours_left(shards) == pytest.approx(left)
    assert cpu_hours_left(shards.iloc[[0, 2, 3]]) == 0.0
    header = status_lines(shards, compared=2, datasets=3)[0]
    assert f"The rest is estimated at {left:.1f} CPU hours" in header
    shards.loc[2, "science_current"] = 0  # a science experiment to rerun has no rate
    assert total_cpu_hours_left(shards) is None
    assert "an unknown number of CPU hours" in status_lines(shards, compared=2, datasets=3)[0]


def test_the_status_says_what_is_compared_and_lists_the_totals():
    header, blank, table = status_lines(_shards(), compared=1, datasets=3)
    assert header.startswith("**Published records: 2 of 4 shards complete; 103 of 261 trainings and 1 of 1 science")
    assert "4.5 CPU hours" in header and "the 1 of 3 datasets with runs" in header
    assert blank == "" and table.splitlines()[0].startswith("| experiment | shards complete |")
    assert table.splitlines()[-1].startswith("| all | 2 of 4 | 103 of 261 |")
