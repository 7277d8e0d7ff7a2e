"""A formula of one's own through the §4.1 recipe: from a pipeline config, and its checks."""

from pathlib import Path

import pandas as pd
import pytest
import sympy

from kan.pipeline.config import load_config
from kan.science import interpretability as interp
from kan.science import registry

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("custom_task.yaml")


@pytest.mark.slow
def test_a_custom_task_from_a_pipeline_config_is_recovered(tmp_path):
    config = load_config(CONFIG, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    summary = registry.run("interpretability", config["science"]["interpretability"], tmp_path)
    assert summary["sine_plus_square.recovered"] == 1.0 and summary["sine_plus_square.hidden_nodes"] <= 2
    assert "sine_plus_square.shape_match" not in summary  # no expected shape given: none checked
    assert summary["sine_plus_square.symbolic_rmse"] < 1e-8
    row = pd.read_csv(tmp_path / "tables" / "interpretability.csv").iloc[0]
    x, y = sympy.symbols("x y")
    shown = sympy.sympify(row["formula"])
    (sine,) = shown.atoms(sympy.sin)
    assert sympy.nsimplify(shown.subs(sine, sympy.Symbol("s"))) == sympy.Symbol("s") + y**2
    assert abs(float(sine.args[0].coeff(x)) - 3.14) < 0.01  # sin(3.14·x), phase and noise gone
    assert (tmp_path / "figures" / "sine_plus_square_symbolic.png").is_file()


@pytest.mark.parametrize("spec, named", [
    ({"formula": "x + z", "ranges": {"x": [0, 1]}}, "without a range"),
    ({"formula": "x +", "ranges": {"x": [0, 1]}}, "cannot parse"),
    ({"formula": "x", "ranges": {"x": [1, 0]}}, "low < high"),
    ({"formula": "x"}, "needs 'formula' and 'ranges'"),
    ({"formula": "x", "ranges": {"x": [0, 1]}, "shape": [1, 1]}, "needs 'formula' and 'ranges'"),
])
def test_bad_custom_tasks_name_the_problem(spec, named):
    with pytest.raises(ValueError, match=named) as error:
        interp.InterpretabilityConfig(tasks=("mine",), custom_tasks={"mine": spec})
    assert "mine" in str(error.value)


def test_custom_tasks_get_starting_settings_and_may_not_shadow_built_ins():
    mine = {"formula": "x*y*z", "ranges": dict.fromkeys("xyz", [0, 1])}
    config = interp.InterpretabilityConfig(tasks=("mine", "xy"), lambs={"mine": 0.02}, custom_tasks={"mine": mine})
    assert config.widths["mine"] == (3, 5, 1) and config.lambs["mine"] == 0.02 and config.grids["mine"] == 5
    assert config.task("mine").expected_shape is None and config.task("xy") is interp.TASKS["xy"]
    with pytest.raises(ValueError, match="clash with built-in"):
        interp.InterpretabilityConfig(custom_tasks={"xy": {"formula": "x", "ranges": {"x": [0, 1]}}})


def test_the_data_seed_can_differ_from_the_model_seed():
    tiny = {"n_train": 20, "n_test": 20, "tasks": ("xy",)}
    same = interp.task_data("xy", interp.InterpretabilityConfig(**tiny, seed=1))
    other = interp.task_data("xy", interp.InterpretabilityConfig(**tiny, seed=1, data_seed=0))
    default = interp.task_data("xy", interp.InterpretabilityConfig(**tiny, seed=0))
    assert not same.tensors["train_input"].equal(other.tensors["train_input"])
    assert other.tensors["train_input"].equal(default.tensors["train_input"])
