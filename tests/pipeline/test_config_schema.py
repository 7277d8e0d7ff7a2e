"""Config validation: shipped profiles pass; a bad key or value fails naming it."""

from __future__ import annotations

import pytest

from kan.experiments.config import ConfigError, data_spec


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


def test_unknown_experiment_is_named(tiny_config, error):
    tiny_config["experiments"]["toys"] = tiny_config["experiments"]["toy_scaling"]
    assert "toys" in error(tiny_config)


def test_unknown_task_is_named(tiny_config, error):
    tiny_config["experiments"]["toy_scaling"]["datasets"] = ["xy", "nope"]
    assert "unknown synthetic task 'nope'" in error(tiny_config)


def test_bad_dataset_spec_is_named(tiny_config, error):
    tiny_config["datasets"]["specs"]["synthetic/xy"] = {"n_trian": 5}
    assert "n_trian" in error(tiny_config)


def test_paper_shape_needs_a_known_shape(tiny_config, error):
    experiment = tiny_config["experiments"]["toy_scaling"]
    experiment.update(family="special", datasets=["jv"])
    assert "special/jv has no paper shape" in error(tiny_config)


def test_widths_without_depths_fail(tiny_config, error):
    del tiny_config["experiments"]["toy_scaling"]["kan"]["depths"]
    assert "give both widths and depths" in error(tiny_config)


def test_data_spec_merges_family_then_task(tiny_config, load):
    tiny_config["datasets"]["specs"]["synthetic/xy"] = {"n_test": 7}
    config = load(tiny_config)
    assert data_spec(config, "synthetic", "xy") == {"n_train": 60, "n_test": 7}
    assert data_spec(config, "feynman", "I.6.20") == {}


def test_science_settings_are_checked_against_the_option_dataclasses(tiny_config, error, load):
    tiny_config["science"] = {"pde": {"kan_steps": 2}, "knots": {"source": "snappy", "kan_stepz": 3}}
    message = error(tiny_config)
    assert "science.knots" in message and "'kan_stepz'" in message and "science.pde" not in message
    del tiny_config["science"]["knots"]["kan_stepz"]
    assert load(tiny_config)["science"]["pde"] == {"kan_steps": 2}


def test_unknown_science_experiment_is_named(tiny_config, error):
    tiny_config["science"] = {"pdes": {}}
    assert "science" in (message := error(tiny_config)) and "pdes" in message
