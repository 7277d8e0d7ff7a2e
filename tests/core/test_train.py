"""The shared trainer: determinism, KAN/MLP parity, guards, schedules and scaling."""

import math

import numpy as np
import pytest
import torch
from scipy.special import j0

from kan import KAN, MLP
from kan.train import TrainConfig, fit

F64 = torch.float64


def _regression(fn, n_in, n=400, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x_train = torch.rand(n, n_in, dtype=F64, generator=gen) * 2 - 1
    x_test = torch.rand(n, n_in, dtype=F64, generator=gen) * 2 - 1
    return {"train_input": x_train, "train_label": fn(x_train), "test_input": x_test, "test_label": fn(x_test)}


def _exp_sin(x):
    return torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:2] ** 2)


def test_same_seed_gives_identical_history():
    data = _regression(_exp_sin, 2)
    runs = [fit(KAN([2, 3, 1], seed=1, dtype=F64), data, TrainConfig(steps=5, grid_schedule=(3, 5))) for _ in range(2)]
    assert runs[0].history == runs[1].history and len(runs[0].history) == 10


def test_kan_and_mlp_train_through_the_same_call():
    data, config = _regression(_exp_sin, 2), TrainConfig(steps=15)
    for model in (KAN([2, 5, 1], num_intervals=5, dtype=F64), MLP([2, 16, 1], dtype=F64)):
        before = math.sqrt(torch.mean((model(data["test_input"]) - data["test_label"]) ** 2).item())
        result = fit(model, data, config)
        assert result.status == "ok" and result.final["test_rmse"] < 0.2 * before


def test_grid_schedule_makes_a_staircase():
    data = _regression(_exp_sin, 2, n=1000)
    result = fit(KAN([2, 1, 1], dtype=F64), data, TrainConfig(steps=20, grid_schedule=(3, 10, 20)))
    grids = [h["grid"] for h in result.history]
    assert grids[0] == 3 and grids[-1] == 20 and len(grids) == 60
    ends = [result.history[i]["test_rmse"] for i in (19, 39, 59)]
    assert ends[0] > 3 * ends[1] and ends[1] > ends[2] and ends[2] < 1e-3


def test_mlp_gets_the_same_step_budget_as_a_grid_schedule():
    result = fit(MLP([2, 4, 1], dtype=F64), _regression(_exp_sin, 2), TrainConfig(steps=3, grid_schedule=(3, 5)))
    assert [h["step"] for h in result.history] == [1, 2, 3, 4, 5, 6]


def test_classification_with_adam_minibatches():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(600, 2, generator=gen) * 2 - 1
    labels = (x[:, 0] * x[:, 1] > 0).long()
    data = {"train_input": x[:400], "train_label": labels[:400], "test_input": x[400:], "test_label": labels[400:]}
    config = TrainConfig(steps=300, optimizer="adam", lr=0.02, loss="cross_entropy", batch_size=64)
    result = fit(KAN([2, 2, 2], num_intervals=5), data, config)
    assert result.final["test_accuracy"] > 0.9


def test_sparsification_penalty_shrinks_unused_edges():
    data = _regression(lambda x: torch.sin(math.pi * x[:, :1]), 3)
    model = KAN([3, 1], num_intervals=5, dtype=F64)
    fit(model, data, TrainConfig(steps=30, lamb=1e-2))
    scores = model.edge_scores(data["train_input"])[0][:, 0]
    assert scores[0] > 30 * scores[1:].max()


def test_divergence_stops_with_status_and_finite_model():
    model = KAN([2, 2, 1], dtype=F64)
    result = fit(model, _regression(_exp_sin, 2), TrainConfig(steps=10, optimizer="adam", lr=1e300))
    assert result.status == "diverged" and "non-finite" in result.message
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_bad_data_is_named():
    data = _regression(_exp_sin, 2)
    data["train_label"] = data["train_label"].clone()
    data["train_label"][3, 0] = float("nan")
    with pytest.raises(ValueError, match="train_label contains NaN"):
        fit(KAN([2, 1]), data)
    with pytest.raises(ValueError, match=r"train_input must have shape \[n, 3\]"):
        fit(KAN([3, 1]), _regression(_exp_sin, 2))
    with pytest.raises(ValueError, match="missing"):
        fit(KAN([2, 1]), {"train_input": data["train_input"]})


def test_bad_config_is_named():
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['stpes'\]"):
        TrainConfig.from_dict({"stpes": 3})
    with pytest.raises(ValueError, match="optimizer must be"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="KAN models only"):
        fit(MLP([2, 1]), _regression(_exp_sin, 2), TrainConfig(lamb=1.0))


def test_j0_scaling_slope_is_at_least_three():
    """[1,1] KAN on J0(20x): test RMSE ∝ G^-α with α >= 3 where the fit is not data-limited."""
    rng = np.random.default_rng(0)
    x_train, x_test = (torch.tensor(rng.uniform(-1, 1, (4000, 1))) for _ in range(2))
    data = {"train_input": x_train, "train_label": torch.tensor(j0(20 * x_train.numpy())),
            "test_input": x_test, "test_label": torch.tensor(j0(20 * x_test.numpy()))}
    grids = (20, 40, 80)
    result = fit(KAN([1, 1], num_intervals=20, dtype=F64), data, TrainConfig(steps=30, grid_schedule=grids))
    errors = [result.history[30 * (i + 1) - 1]["test_rmse"] for i in range(len(grids))]
    slope = np.polyfit(np.log(grids), np.log(errors), 1)[0]
    assert slope <= -3, f"errors {errors} give slope {slope:.2f}"


def test_stall_rule_ends_converged_phases_early_and_keeps_the_result():
    """A [2,1,1] KAN on exp(sin(πx)+y²) converges within its phases long before 60 steps: with the
    stall rule every phase ends early, steps stay numbered 1, 2, …, each phase's last step is
    recorded, and the final test RMSE stays within a few percent of the full run's."""
    data = _regression(_exp_sin, 2, n=1000)
    full = fit(KAN([2, 1, 1], dtype=F64), data, TrainConfig(steps=60, grid_schedule=(3, 10, 20)))
    stalled = fit(KAN([2, 1, 1], dtype=F64), data,
                  TrainConfig(steps=60, grid_schedule=(3, 10, 20), stall_window=5, stall_tolerance=1e-3))
    steps = [h["step"] for h in stalled.history]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) < 0.8 * len(full.history)
    assert [g for g in dict.fromkeys(h["grid"] for h in stalled.history)] == [3, 10, 20]
    assert stalled.final["test_rmse"] == pytest.approx(full.final["test_rmse"], rel=0.05)


def test_stall_rule_off_is_bitwise_the_plain_fit_and_bad_settings_are_named():
    data = _regression(_exp_sin, 2)
    plain = fit(KAN([2, 3, 1], seed=1, dtype=F64), data, TrainConfig(steps=5, grid_schedule=(3, 5)))
    off = fit(KAN([2, 3, 1], seed=1, dtype=F64), data, TrainConfig(steps=5, grid_schedule=(3, 5), stall_tolerance=0.5))
    assert plain.history == off.history  # stall_window = 0: the tolerance is never read
    with pytest.raises(ValueError, match="stall_window must be >= 0"):
        TrainConfig(stall_window=-1)
    with pytest.raises(ValueError, match=r"stall_tolerance must lie in \[0, 1\)"):
        TrainConfig(stall_tolerance=1.0)
