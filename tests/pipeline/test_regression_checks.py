"""Regression comparisons name the experiment, the run (or science number) and the values when they fail."""

from __future__ import annotations

import pandas as pd

import pytest

from kan.pipeline.regression import (
    compare_band, compare_expected, compare_paper, compare_science_expected, compare_science_paper, compare_trends,
    expected_table, record_for_machine, rows_for_machine, science_rows_for_machine,
)
from kan.records.provenance import machine_kind


def _runs():
    rows = [("r1", 3, 0.10), ("r2", 5, 0.01), ("r3", 10, 0.001)]
    return pd.DataFrame([
        {"run_id": rid, "experiment": "grid_extension", "dataset": "exp_sin_sq", "model": "kan", "variant": "human",
         "shape": "[2,1,1]", "grid": grid, "seed": 0, "n_params": 10 * grid, "steps": grid, "status": "ok",
         "train_rmse": rmse / 2, "test_rmse": rmse}
        for rid, grid, rmse in rows
    ])


def test_identical_tables_pass():
    runs = _runs()
    assert compare_expected(runs, expected_table(runs), rtol=1e-9) == []


def test_differences_are_named_with_their_numbers():
    runs, expected = _runs(), expected_table(_runs())
    runs.loc[1, "test_rmse"] = 0.02
    runs.loc[2, "n_params"] = 99
    failures = compare_expected(runs.drop(index=0), expected, rtol=1e-6)
    assert any("missing run: grid_extension/exp_sin_sq human [2,1,1] G=3" in f for f in failures)
    assert any("G=5" in f and "test_rmse = 0.02, expected 0.01" in f for f in failures)
    assert any("G=10" in f and "n_params is 99, expected 100" in f for f in failures)


def test_floats_recorded_on_another_machine_kind_are_not_compared():
    runs, expected = _runs(), expected_table(_runs())
    runs.loc[1, "test_rmse"] = 0.02
    assert compare_expected(runs, expected, rtol=None) == []
    runs.loc[2, "status"] = "nan"
    assert compare_expected(runs, expected, rtol=None) == [
        "grid_extension/exp_sin_sq human [2,1,1] G=10 seed=0 (run r3): status is nan, expected ok"]


def test_expected_files_keep_one_set_of_rows_per_machine_kind():
    amd = record_for_machine(None, expected_table(_runs()), "x86_64-AuthenticAMD-avx2")
    changed = _runs().assign(test_rmse=lambda t: t.test_rmse * 2)
    both = record_for_machine(amd, expected_table(changed), "x86_64-GenuineIntel-avx512")
    again = record_for_machine(both, expected_table(changed), "x86_64-GenuineIntel-avx512")  # replaces, keeps AMD
    assert again.equals(both) and sorted(both["machine"].unique()) == ["x86_64-AuthenticAMD-avx2", "x86_64-GenuineIntel-avx512"]
    rows, recorded = rows_for_machine(both, "x86_64-GenuineIntel-avx512")
    assert recorded and compare_expected(changed, rows, rtol=1e-9) == []
    rows, recorded = rows_for_machine(both, "aarch64")  # unknown kind: the first kind's rows, floats not comparable
    assert not recorded and rows["test_rmse"].tolist() == _runs()["test_rmse"].tolist()
    with pytest.raises(ValueError, match="no 'machine' column"):
        rows_for_machine(expected_table(_runs()), "aarch64")


def test_science_values_are_compared_per_experiment_where_that_kind_recorded_them():
    def rows(machine, experiment, value):
        return {"machine": machine, "experiment": experiment, "metric": "accuracy", "value": value}

    intel, amd = "x86_64-GenuineIntel-avx512", "x86_64-AuthenticAMD-avx2"
    expected = pd.DataFrame([rows(amd, "knots", 0.5), rows(intel, "knots", 0.6), rows(intel, "localization", 0.9)])
    chosen, compared = science_rows_for_machine(expected, amd)  # localization re-recorded on Intel only
    assert compared == {"knots"} and chosen.to_dict("records") == [
        {"experiment": "knots", "metric": "accuracy", "value": 0.5},
        {"experiment": "localization", "metric": "accuracy", "value": 0.9}]
    ours = pd.DataFrame([{"experiment": "knots", "metric": "accuracy", "value": 0.5},
                         {"experiment": "localization", "metric": "accuracy", "value": 0.7}])
    assert compare_science_expected(ours, chosen, 1e-9, compared) == []  # localization's value not compared
    assert compare_science_expected(ours.assign(value=[0.4, 0.7]), chosen, 1e-9, compared) == [
        "science knots: accuracy = 0.4, expected 0.5 (relative tolerance 1e-09)"]
    assert compare_science_expected(ours.iloc[:1], chosen, 1e-9, compared) == [
        "missing science number: localization accuracy (expected 0.9)"]


def test_machine_kind_names_architecture_vendor_and_vector_extension(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma\n\n"
                       "processor\t: 1\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert machine_kind.__wrapped__(cpuinfo).endswith("-AuthenticAMD-avx2")
    assert machine_kind.__wrapped__(tmp_path / "absent") not in ("", machine_kind.__wrapped__(cpuinfo))


def test_paper_check_uses_the_factor():
    reference = {"toy": {"rows": [{"dataset": "exp_sin_sq", "rmse": 1e-4}]}}
    check = {"experiment": "grid_extension", "dataset": "exp_sin_sq", "variants": ["human"], "factor": 10,
             "paper": {"block": "toy", "column": "rmse"}}
    assert compare_paper(_runs(), [check], reference) == []
    failures = compare_paper(_runs(), [{**check, "factor": 5}], reference)
    assert failures == ["grid_extension/exp_sin_sq human: best test RMSE 0.001 exceeds 5 x the paper's 0.0001 "
                        "(paper.yaml toy/rmse)"]


def test_trend_check_wants_rmse_to_fall_with_the_grid():
    trend = {"experiment": "grid_extension", "dataset": "exp_sin_sq", "variant": "human", "shape": "[2,1,1]",
             "claim": "grid extension lowers test RMSE"}
    runs = _runs()
    assert compare_trends(runs, [trend]) == []
    runs.loc[2, "test_rmse"] = 0.5
    assert "G=10: 0.5" in compare_trends(runs, [trend])[0]


SCIENCE = pd.DataFrame([("continual", "kan.forgetting", 0.01), ("continual", "mlp_over_kan.forgetting", 300.0),
                        ("localization", "gaam.exact.accuracy", 0.97), ("localization", "gaam.auto.accuracy", float("nan"))],
                       columns=["experiment", "metric", "value"])


def test_science_numbers_compare_tightly_and_name_the_metric():
    assert compare_science_expected(SCIENCE, SCIENCE.copy(), rtol=1e-6) == []  # NaN equals NaN
    timed = pd.concat([SCIENCE, pd.DataFrame([("continual", "kan.seconds", 3.0)], columns=SCIENCE.columns)])
    assert compare_science_expected(timed, SCIENCE, rtol=1e-6) == []  # timings are not results
    changed = SCIENCE.copy()
    changed.loc[0, "value"] = 0.0100001
    failures = compare_science_expected(changed.drop(index=3), SCIENCE, rtol=1e-9)
    assert failures == ["missing science number: localization gaam.auto.accuracy (expected nan)",
                        "science continual: kan.forgetting = 0.0100001, expected 0.01 (relative tolerance 1e-09)"]
    assert compare_science_expected(changed.drop(index=3), SCIENCE, rtol=None) == [failures[0]]  # another machine kind


def test_science_paper_checks_use_the_paper_cell_of_the_metric(repo):
    from kan.pipeline.config import load_yaml

    paper = load_yaml(repo / "reports" / "reference" / "paper.yaml")
    near = [{"experiment": "localization", "metric": "gaam.exact.accuracy", "tolerance": 0.05}]  # paper: 0.992
    claims = [{"experiment": "continual", "metric": "mlp_over_kan.forgetting"}]
    assert compare_science_paper(SCIENCE, near, claims, paper) == []
    failures = compare_science_paper(SCIENCE, [{**near[0], "tolerance": 0.01}], [], paper)
    assert len(failures) == 1 and "97.0% against the paper's 99.2%" in failures[0]
    absent = compare_science_paper(SCIENCE, [], [{"experiment": "continual", "metric": "kan.earlier_peak_height"}], paper)
    assert absent == ["science continual: no claim on kan.earlier_peak_height to check"]


def test_the_band_spans_every_recorded_kind_widened_by_its_factor():
    runs = _runs()
    recorded = pd.concat([expected_table(runs).assign(machine="a"),
                          expected_table(runs).assign(machine="b", test_rmse=runs["test_rmse"] * 1.5)])
    assert compare_band(runs.assign(test_rmse=runs["test_rmse"] * 2.9), recorded, 2.0) == []  # 1.5 x 2 = 3
    failures = compare_band(runs.assign(test_rmse=runs["test_rmse"] * 3.1), recorded, 2.0)
    assert len(failures) == 3 and "G=5" in failures[1] and "outside [0.005, 0.03]" in failures[1]


def _ci_runs(load, repo, tmp_path):
    """The ci profile's trainings, trained in this process into a runs table."""
    from kan.data import generate_to_dir
    from kan.experiments import runner
    from kan.records.aggregate import runs_table
    from kan.records.runfiles import is_finished
    from kan.experiments.sweep import chunks, datasets_used, expand

    settings = load(repo / "workflow" / "config" / "ci.yaml")
    trainings = expand(settings)
    folders = {}
    for (family, name), data in datasets_used(trainings).items():
        folders[(family, name)] = generate_to_dir(family, name, data["spec"], data["seed"], tmp_path / "data" / family / name)
    for chunk in chunks(trainings, settings["chunk_size"]).values():
        runner.train_chunk(chunk, folders, tmp_path / "results", {})
    return runs_table(sorted(d for d in (tmp_path / "results" / "runs").glob("*/*/*") if is_finished(d)))


def test_the_band_catches_a_grid_off_by_one_interval_on_an_unrecorded_kind(load, repo, tmp_path, monkeypatch):
    """Where no values were recorded (a new kind of CPU), only the band checks floats. A plausible
    bug, every spline grid shifted by one interval, trains to numbers outside it; the same code
    without the bug stays inside."""
    from kan import spline
    from kan.pipeline.config import load_yaml

    recorded = pd.read_csv(repo / "reports" / "reference" / "ci_expected.csv")
    factor = load_yaml(repo / "reports" / "reference" / "ci_expected.yaml")["band_factor"]
    assert compare_band(_ci_runs(load, repo, tmp_path / "clean"), recorded, factor) == []
    correct = spline.uniform_grid

    def shifted(low, high, num_intervals, order):
        step = (high - low) / num_intervals
        return correct(low + step, high + step, num_intervals, order)

    monkeypatch.setattr(spline, "uniform_grid", shifted)
    failures = compare_band(_ci_runs(load, repo, tmp_path / "bug"), recorded, factor)
    assert len(failures) >= 3, failures  # 16 of the 44 RMSEs when written
