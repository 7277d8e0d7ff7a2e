"""Config validation: shipped profiles pass; a bad key or value fails naming it."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from kan.pipeline.config import ConfigError, check_overrides


@pytest.mark.parametrize("name", ["default", "ci", "paper"])
def test_shipped_configs_validate(name, repo, load):
    config = load(repo / "workflow" / "config" / f"{name}.yaml")
    assert config["profile"] == name and config["experiments"]


def test_defaults_are_filled(tiny_config, load):
    config = load(tiny_config)
    assert config["dtype"] == "float64" and config["tracking"]["uri"] == ""
    assert config["experiments"]["toy_scaling"]["kan"]["order"] == 3
    assert config["experiments"]["toy_scaling"]["kan"]["prune"]["threshold"] == 0.01


@pytest.fixture
def error(load):
    """``error(config)``: the ConfigError message of an invalid config."""
    def message(config) -> str:
        with pytest.raises(ConfigError) as info:
            load(config)
        return str(info.value)

    return message


def test_unknown_key_is_named(tiny_config, error):
    tiny_config["experiments"]["toy_scaling"]["train"]["stepz"] = 3
    message = error(tiny_config)
    assert "experiments.toy_scaling.train" in message and "stepz" in message


def test_bad_value_is_named(tiny_config, error):
    tiny_config["experiments"]["toy_scaling"]["mlp"]["activations"] = ["gelu"]
    message = error(tiny_config)
    assert "experiments.toy_scaling.mlp.activations.0" in message and "gelu" in message


def test_a_published_folder_without_records_is_named(tiny_config, error, tmp_path, load):
    tiny_config["published"] = str(tmp_path / "paper-run")
    message = error(tiny_config)
    assert "at published:" in message and "holds no runs.parquet" in message
    pd.DataFrame({"run_id": []}).to_parquet(tmp_path / "runs.parquet")
    assert load({**tiny_config, "published": str(tmp_path)})["published"] == str(tmp_path)


def test_unknown_experiment_is_named(tiny_config, error):
    tiny_config["experiments"]["toys"] = tiny_config["experiments"]["toy_scaling"]
    assert "toys" in error(tiny_config)


def test_unknown_task_is_named(tiny_config, error):
    tiny_config["experiments"]["toy_scaling"]["datasets"] = ["xy", "nope"]
    assert "unknown synthetic task 'nope'" in error(tiny_config)


def test_bad_dataset_spec_is_named(tiny_config, error):
    tiny_config["datasets"]["specs"]["synthetic/xy"] = {"n_trian": 5}
    assert "n_trian" in error(tiny_config)


def test_a_spec_no_experiment_reads_is_refused(tiny_config, error):
    """Such overrides used to be ignored without a word: a mistyped dataset list, or data
    settings of the science experiments put under datasets.specs."""
    tiny_config["datasets"]["specs"]["synthetic/exp_sin_sq"] = {"n_train": 50}
    assert ("at datasets.specs.synthetic/exp_sin_sq: no experiment trains on synthetic/exp_sin_sq, so this override "
            "would be ignored; remove it or add exp_sin_sq to an experiment's datasets") in error(tiny_config)
    del tiny_config["datasets"]["specs"]["synthetic/exp_sin_sq"]
    tiny_config["datasets"]["specs"]["anderson"] = {"n_train": 50}
    assert "at datasets.specs.anderson: no experiment trains on anderson data" in error(tiny_config)
    assert "science.<name> (science.knots, science.localization)" in error(tiny_config)


def test_a_shard_of_the_wrong_form_is_explained_not_matched_against_a_regex(tiny_config, error):
    tiny_config["shard"] = "3-8"
    message = error(tiny_config)
    assert "at shard: '3-8' is not of the expected form; \"k/N\": the `shard` target builds" in message
    assert "^[1-9]" not in message


def test_several_shards_validate_and_a_bad_one_among_them_is_named(tiny_config, error, load):
    assert load({**tiny_config, "shard": "3/8, 5/8"})["shard"] == "3/8, 5/8"
    tiny_config["shard"] = "3/8,9/8"
    assert "at shard: shard must be 'k/N' with 1 <= k <= N (e.g. '3/8'), got '9/8'" in error(tiny_config)


def test_paper_shape_needs_a_known_shape(tiny_config, error):
    experiment = tiny_config["experiments"]["toy_scaling"]
    experiment.update(family="special", datasets=["jv"])
    assert "special/jv has no paper shape" in error(tiny_config)


def test_widths_without_depths_fail(tiny_config, error):
    del tiny_config["experiments"]["toy_scaling"]["kan"]["depths"]
    assert "give both widths and depths" in error(tiny_config)


@pytest.mark.parametrize(("where", "value", "named"), [
    (("chunk_size",), 4.0, "at chunk_size: 4.0 is not of type 'integer'"),  # Snakemake crashed on it
    (("experiments", "toy_scaling", "mlp", "widths"), [5.0], "at experiments.toy_scaling.mlp.widths.0: 5.0"),
])
def test_a_float_where_a_count_belongs_is_named(tiny_config, error, where, value, named):
    """JSON Schema takes 4.0 for an integer; passed on, it changed run ids or crashed the DAG."""
    block = tiny_config
    for key in where[:-1]:
        block = block[key]
    block[where[-1]] = value
    assert named in error(tiny_config)


def test_depth_one_with_several_widths_is_refused(tiny_config, error):
    tiny_config["experiments"]["toy_scaling"]["mlp"].update({"widths": [5, 20], "depths": [1, 2]})
    assert "at experiments.toy_scaling.mlp.depths: depth 1 has no hidden layer" in error(tiny_config)


@pytest.mark.parametrize(("uri", "named"), [
    ("sqlite://results/mlflow.db", "names no file: a SQLite store is sqlite:///<path>"),
    ("sqlte:///results/mlflow.db", "is not a tracking URI"),
    ("results/mlflow.db", "is not a tracking URI"),
])
def test_a_tracking_uri_the_store_cannot_open_is_named(tiny_config, error, load, uri, named):
    tiny_config["tracking"] = {"uri": uri}
    assert f"at tracking.uri: {uri!r} {named}" in error(tiny_config)
    for good in ("sqlite:///results/mlflow.db", "http://tracking:5000"):
        assert load({**tiny_config, "tracking": {"uri": good}})["tracking"]["uri"] == good


@pytest.mark.parametrize(("datasets", "why"), [([], "should be non-empty"), (["xy", "xy"], "has non-unique elements"),
                                              ("xy", "is not of type 'array'")])
def test_a_value_of_no_allowed_form_says_why(tiny_config, error, datasets, why):
    tiny_config["experiments"]["toy_scaling"]["datasets"] = datasets
    message = error(tiny_config)
    assert f"at experiments.toy_scaling.datasets: {datasets!r} fits none of the allowed forms: 'all' was expected" in message
    assert why in message


def test_science_settings_are_checked_against_the_option_dataclasses(tiny_config, error, load):
    tiny_config["science"] = {"pde": {"kan_steps": 2}, "knots": {"source": "snappy", "kan_stepz": 3}}
    message = error(tiny_config)
    assert "science.knots" in message and "'kan_stepz'" in message and "science.pde" not in message
    del tiny_config["science"]["knots"]["kan_stepz"]
    assert load(tiny_config)["science"]["pde"] == {"kan_steps": 2}


def test_unknown_science_experiment_is_named(tiny_config, error):
    tiny_config["science"] = {"pdes": {}}
    assert "science" in (message := error(tiny_config)) and "pdes" in message


@pytest.mark.parametrize("schedule", [[10, 5, 3], [5, 5], [3, 10**12]])
def test_grid_schedule_must_increase_within_the_bound(tiny_config, error, schedule):
    tiny_config["experiments"]["toy_scaling"]["train"]["grid_schedule"] = schedule
    message = error(tiny_config)
    assert "experiments.toy_scaling.train.grid_schedule" in message and "strictly increasing" in message


@pytest.mark.parametrize(("path", "value"), [
    (("experiments", "toy_scaling", "train", "lr"), float("nan")),
    (("experiments", "toy_scaling", "kan", "prune", "lambdas", 0), float("inf")),
    (("science", "pde", "alpha"), float("-inf")),
])
def test_non_finite_numbers_are_named_before_anything_else(tiny_config, error, path, value):
    tiny_config["science"] = {"pde": {}}
    tiny_config["experiments"]["toy_scaling"]["train"]["stepz"] = 3  # a schema error, reported after
    *parents, last = path
    target = tiny_config
    for key in parents:
        target = target[key]
    target[last] = value
    message = error(tiny_config)
    assert f"at {'.'.join(map(str, path))}: {value} is not a finite number" in message and "stepz" not in message


def test_science_step_counts_must_be_positive(tiny_config, error):
    tiny_config["science"] = {"pde": {"kan_steps": -3}}
    message = error(tiny_config)
    assert "science.pde" in message and "kan_steps must be an integer >= 1, got -3" in message


def test_empty_mapping_on_the_command_line_does_not_run_the_default_sweep(repo, tmp_path):
    """Snakemake merges --config into the embedded default key by key: ``experiments={}`` would
    leave the default sweep in place, so it must stop naming the key."""
    command = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(tmp_path),
               "-n", "--config", "experiments={}"]
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "at experiments:" in out and "train_chunk" not in out, out


def test_typed_text_inside_a_command_line_mapping_is_named_but_not_in_a_file():
    """Only the last source is the command line; a config file may quote a number on purpose, and
    a top-level --config value is typed by Snakemake itself."""
    merged = {"science": {"pde": {"kan_steps": "5"}}}
    check_overrides(merged, [{"science": {"pde": {"kan_steps": "5"}}}, {"shard": "3", "tracking": {"experiment": "x"}}])
    with pytest.raises(ConfigError) as raised:
        check_overrides(merged, [{}, {"science": {"pde": {"kan_grids": ["5", "1e1"], "kan_steps": "5"}},
                                      "report": {"x": "true"}}])
    lines = str(raised.value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "at science.pde.kan_grids.0", "at science.pde.kan_grids.1", "at science.pde.kan_steps", "at report.x"]


@pytest.mark.parametrize(("family", "name"), [("knot", "snappy"), ("anderson", "mosaic")])
def test_classification_families_are_rejected_for_training_experiments(tiny_config, error, family, name):
    """knot and anderson data are read by the science experiments (science.knots, science.localization);
    a training experiment on them used to crash validation (knot: TypeError) or pass it (anderson)."""
    experiment = tiny_config["experiments"]["toy_scaling"]
    experiment.update(family=family, datasets=[name], kan={"widths": [3], "depths": [2]}, mlp={})
    experiment["train"]["loss"] = "cross_entropy"
    message = error(tiny_config)
    assert f"at experiments.toy_scaling.family: '{family}' is not one of ['synthetic', 'feynman', 'special']" in message


def test_cross_entropy_on_regression_data_names_the_loss(tiny_config, error):
    tiny_config["experiments"]["toy_scaling"]["train"]["loss"] = "cross_entropy"
    message = error(tiny_config)
    assert ("at experiments.toy_scaling.train.loss: cross_entropy is a classification loss, but synthetic/xy is "
            "regression data: use mse") in message


def test_unsupervised_data_cannot_be_trained_on(tiny_config, error):
    """synthetic/unsupervised_6var has no target: a model of it would have 0 outputs (ValueError in the job)."""
    experiment = tiny_config["experiments"]["toy_scaling"]
    experiment.update(datasets=["xy", "unsupervised_6var"], kan={"widths": [3], "depths": [2]})
    message = error(tiny_config)
    assert "at experiments.toy_scaling.datasets: synthetic/unsupervised_6var is unsupervised data" in message
    assert "synthetic/xy" not in message


def test_ranges_outside_the_formula_domain_are_named_before_any_job(tiny_config, error, load):
    """sqrt(1 - b^2) of feynman I.15.3x is imaginary for |b| > 1: the data job used to write NaN targets
    (only a RuntimeWarning) and training failed later naming neither the task nor the spec."""
    tiny_config["experiments"]["toy_scaling"].update(family="feynman", datasets=["I.15.3x"])
    tiny_config["datasets"]["specs"] = {"feynman/I.15.3x": {"n_train": 50, "n_test": 20, "ranges": {"b": [-2, 2]}}}
    message = error(tiny_config)
    assert "at datasets.specs.feynman/I.15.3x.ranges: feynman/I.15.3x: column 'target' of the train split has" in message
    assert "NaN or infinite" in message
    tiny_config["datasets"]["specs"]["feynman/I.15.3x"]["ranges"] = {"b": [-0.5, 0.5]}
    assert load(tiny_config)["datasets"]["specs"]["feynman/I.15.3x"]["ranges"] == {"b": [-0.5, 0.5]}


def test_family_ranges_outside_the_domain_name_the_family_key(tiny_config, error):
    tiny_config["experiments"]["toy_scaling"].update(family="feynman", datasets=["I.15.3x"])
    tiny_config["datasets"]["specs"] = {"feynman": {"n_train": 50, "n_test": 20}, "feynman/I.15.3x": {"ranges": {"b": [1, 3]}}}
    assert "at datasets.specs.feynman/I.15.3x.ranges: feynman/I.15.3x" in error(tiny_config)


def test_mistyped_miss_cause_key_is_named_before_any_job(tiny_config, error, load):
    """The paper_vs_ours job, the last one, used to be the first to notice."""
    good = "feynman/II.38.3/human_rmse"
    tiny_config["report"] = {"miss_causes": {good: "a cause", "feynman/II.38.3/human_rmsee": "a typo"}}
    message = error(tiny_config)
    assert "at report.miss_causes: 1 key(s) match no number of the paper: 'feynman/II.38.3/human_rmsee'" in message
    del tiny_config["report"]["miss_causes"]["feynman/II.38.3/human_rmsee"]
    tiny_config["report"]["miss_causes"]["knot/KAN: test_accuracy"] = "a science key"
    assert load(tiny_config)["report"]["miss_causes"][good] == "a cause"


def test_malformed_yaml_is_a_config_error(tmp_path, error):
    path = tmp_path / "bad.yaml"
    path.write_text("experiments: {toy_scaling: [\n", encoding="utf-8")
    assert f"{path}: not valid YAML" in error(path)
