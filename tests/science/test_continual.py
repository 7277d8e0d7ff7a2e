"""Continual learning: a local-grid KAN keeps earlier peaks, an MLP forgets them."""

import math

import pytest

from kan.science import continual

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def result():
    config = continual.ContinualConfig(steps_per_phase=10, n_grid=400, seeds=SEEDS)
    return continual.run_continual(config)


@pytest.mark.slow
def test_kan_forgets_much_less_than_mlp(result):
    forgetting = result.forgetting().pivot(index="seed", columns="model", values="forgetting")
    assert forgetting.index.tolist() == list(SEEDS)
    assert (forgetting["KAN"] < 0.05).all(), forgetting
    assert (forgetting["KAN"] < 0.1 * forgetting["MLP"]).all(), forgetting
    assert (forgetting["MLP"] > 0.2).all(), forgetting
    last = result.errors[(result.errors["phase"] == 4) & (result.errors["peak"] < 4)]
    heights = last.groupby("model")["height"].agg(["min", "max"])
    assert heights.loc["KAN", "min"] > 0.9 and heights.loc["KAN", "max"] < 1.1, heights


@pytest.mark.slow
def test_both_models_learn_the_current_peak(result):
    # a model that ignored the data would score ~0.42 here (the peak's own RMS over its region)
    current = result.summary.groupby("model")["rmse_current"].agg(["mean", "max"])
    assert current.loc["KAN", "max"] < 0.05 and current.loc["MLP", "mean"] < 0.2, current


@pytest.mark.slow
def test_tables_are_tidy_and_consistent(result):
    n_phases = len(continual.CENTERS)
    assert len(result.predictions) == 2 * len(SEEDS) * n_phases * 400
    assert len(result.errors) == 2 * len(SEEDS) * n_phases * n_phases
    assert len(result.summary) == 2 * len(SEEDS) * n_phases
    first = result.summary[result.summary["phase"] == 0]
    assert first["rmse_earlier"].isna().all()
    # the error on peak k after phase k is the "current" error
    same = result.errors[result.errors["peak"] == result.errors["phase"]].set_index(["model", "seed", "phase"])["rmse"]
    summary = result.summary.set_index(["model", "seed", "phase"])["rmse_current"]
    assert same.sort_index().tolist() == pytest.approx(summary.sort_index().tolist())
    truth = result.predictions.groupby("x")["truth"].first()
    assert truth.max() == pytest.approx(1.0, abs=1e-2) and math.isclose(truth.min(), 0.0, abs_tol=1e-3)


@pytest.mark.slow
def test_figure_is_written(result, tmp_path):
    path = continual.plot_continual(result.predictions, tmp_path / "continual.png")
    assert path.stat().st_size > 1000


def test_config_from_dict_validates():
    config = continual.ContinualConfig.from_dict({"seeds": [3, 4], "mlp_width": [1, 8, 1]})
    assert config.seeds == (3, 4) and config.mlp_width == (1, 8, 1)
    with pytest.raises(ValueError, match="unknown option.*epochs.*continual"):
        continual.ContinualConfig.from_dict({"epochs": 3})
    with pytest.raises(ValueError, match="optimizer"):
        continual.ContinualConfig(optimizer="sgd")
