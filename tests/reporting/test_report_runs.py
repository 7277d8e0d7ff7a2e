"""Loading the runs and histories tables."""

import pandas as pd
import pytest

from kan.reporting import load_histories, load_runs, usable_runs
from kan.reporting.runs import left_out


def test_missing_columns_are_named(make_runs):
    runs = make_runs({}).drop(columns=["variant", "seconds"])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['variant', 'seconds'\]"):
        load_runs(runs)


def test_missing_history_columns_are_named(tmp_path):
    path = tmp_path / "histories.parquet"
    pd.DataFrame({"run_id": ["a"], "step": [1]}).to_parquet(path)
    with pytest.raises(ValueError, match="histories.parquet is missing column.*grid"):
        load_histories(path)


def test_csv_round_trip_keeps_text_columns(make_runs, tmp_path):
    path = tmp_path / "runs.csv"
    make_runs({"experiment": "feynman", "dataset": "I.6.20"}, {"model": "mlp"}).to_csv(path, index=False)
    runs = load_runs(path)
    assert runs["dataset"].tolist() == ["I.6.20", "jv"]
    assert runs["activation"].tolist() == ["", "tanh"]  # an empty CSV cell is "", not NaN
    assert runs["shape"].iloc[0] == "[2,5,1]"


def test_failed_runs_are_excluded_and_counted(make_runs):
    runs = load_runs(make_runs({}, {"status": "diverged"}, {"status": "early_stopped"}, {}))
    usable, excluded = usable_runs(runs)
    assert excluded == 2
    assert usable["status"].tolist() == ["ok", "ok"]


def test_what_is_left_out_is_told_per_status_with_models_and_grids(make_runs):
    runs = load_runs(make_runs({}, {"status": "diverged", "grid": 200}, {"status": "diverged", "grid": 100},
                               {"status": "early_stopped", "model": "mlp"}))
    assert left_out(runs) == "2 diverged (kan at G = 100–200), 1 early_stopped (mlp)"
    assert left_out(runs.iloc[:1]) == "none"
