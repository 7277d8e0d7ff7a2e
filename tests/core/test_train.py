"""The shared trainer: determinism, KAN/MLP parity, guards, schedules and scaling."""

import copy
import math
import re

import numpy as np
import pytest
import torch
from scipy.special import j0

from kan import KAN, MLP, phases, train
from kan.batched import fit_many
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
        fit(KAN([2, 1], dtype=F64), data)
    with pytest.raises(ValueError, match=r"train_input must have shape \[n, 3\]"):
        fit(KAN([3, 1], dtype=F64), _regression(_exp_sin, 2))
    with pytest.raises(ValueError, match="missing"):
        fit(KAN([2, 1], dtype=F64), {"train_input": data["train_input"]})
    misspelled = {("train_inputs" if key == "train_input" else key): value for key, value in data.items()}
    with pytest.raises(ValueError, match=r"missing \['train_input'\] \(it has unknown keys \['train_inputs'\]\)"):
        fit(KAN([2, 1], dtype=F64), misspelled)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['stpes'\]"):
        TrainConfig.from_dict({"stpes": 3})
    with pytest.raises(ValueError, match="optimizer must be"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="KAN models only"):
        fit(MLP([2, 1], dtype=F64), _regression(_exp_sin, 2), TrainConfig(lamb=1.0))
    with pytest.raises(TypeError, match="config must be a TrainConfig .*got dict"):
        fit(MLP([2, 1], dtype=F64), _regression(_exp_sin, 2), {"steps": 2})
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\)"):
        TrainConfig(seed=2**64)  # torch's generator would fail later, without naming the option


def test_a_grid_schedule_may_be_any_sequence_of_integers():
    """A list, range or numpy array is the tuple it lists (stored with every run, so plain ints)."""
    for schedule in ([3, 5], range(3, 6, 2), np.array([3, 5])):
        stored = TrainConfig(grid_schedule=schedule).grid_schedule
        assert stored == (3, 5) and all(type(g) is int for g in stored), schedule


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
    with pytest.raises(ValueError, match="stall_window must be an integer >= 0"):
        TrainConfig(stall_window=-1)
    with pytest.raises(ValueError, match=r"stall_tolerance must lie in \[0, 1\)"):
        TrainConfig(stall_tolerance=1.0)


@pytest.mark.parametrize("split", ["train", "test"])
def test_empty_split_is_named(split):
    data = _regression(_exp_sin, 2)
    data[f"{split}_input"], data[f"{split}_label"] = data[f"{split}_input"][:0], data[f"{split}_label"][:0]
    with pytest.raises(ValueError, match=f"{split}_input has no rows"):
        fit(KAN([2, 1], dtype=F64), data, TrainConfig(steps=1))


def test_float32_data_into_a_float64_model_is_named():
    data = {key: value.float() for key, value in _regression(_exp_sin, 2).items()}
    with pytest.raises(TypeError, match=r"train_input has dtype torch.float32, expected torch.float64 \(the model's dtype\)"):
        fit(KAN([2, 1], dtype=F64), data, TrainConfig(steps=1))


def test_integer_regression_data_is_named():
    data = {key: (value * 10).long() for key, value in _regression(_exp_sin, 2).items()}
    with pytest.raises(TypeError, match=r"train_input has dtype torch.int64, expected torch.float64 \(the model's dtype\)"):
        fit(KAN([2, 1], dtype=F64), data, TrainConfig(steps=1))
    data["train_input"], data["test_input"] = data["train_input"].double(), data["test_input"].double()
    with pytest.raises(TypeError, match=r"train_label has dtype torch.int64, expected torch.float64 \(the model's dtype\)"):
        fit(KAN([2, 1], dtype=F64), data, TrainConfig(steps=1))


def test_classification_labels_stay_int64_class_indices():
    data = _regression(_exp_sin, 2)
    data["train_label"], data["test_label"] = (data["train_input"][:, 0] > 0).long(), (data["test_input"][:, 0] > 0).long()
    assert fit(MLP([2, 2], dtype=F64), data, TrainConfig(steps=2, loss="cross_entropy")).status == "ok"


def test_numpy_arrays_are_named_with_the_expected_type():
    data = {key: value.numpy() for key, value in _regression(_exp_sin, 2).items()}
    with pytest.raises(TypeError, match=r"train_input must be a torch.Tensor, got numpy.ndarray"):
        fit(KAN([2, 1], dtype=F64), data, TrainConfig(steps=1))


@pytest.mark.parametrize(("values", "message"), [
    ({"steps": "5"}, "steps must be an integer >= 1, got '5'"),
    ({"steps": 2.0}, "steps must be an integer >= 1, got 2.0"),
    ({"lr": -1}, "lr must be a finite number > 0, got -1"),
    ({"lr": math.nan}, "lr must be a finite number > 0, got nan"),
    ({"lr": "0.1"}, "lr must be a finite number > 0, got '0.1'"),
    ({"lamb_l1": math.inf}, "lamb_l1 must be a finite number >= 0, got inf"),
    ({"batch_size": 0}, "batch_size must be None or an integer >= 1, got 0"),
    ({"stop_on_test_rise": "yes"}, "stop_on_test_rise must be True or False, got 'yes'"),
    ({"grid_schedule": (10, 5, 3)}, "grid_schedule must be strictly increasing integers in [1, 10000], got (10, 5, 3)"),
    ({"grid_schedule": (5, 5)}, "grid_schedule must be strictly increasing integers in [1, 10000], got (5, 5)"),
    ({"grid_schedule": (3, 10**12)}, "grid_schedule must be strictly increasing integers in [1, 10000]"),
])
def test_bad_option_types_and_values_are_named(values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**values)


def test_finite_runaway_loss_is_diverged_and_restores_the_last_good_state():
    """Adam at lr = 1e30 keeps the loss finite (~1e60) but runs away: diverged, model as before training."""
    model = MLP([2, 8, 1], dtype=F64)
    result = fit(model, _regression(_exp_sin, 2), TrainConfig(steps=10, optimizer="adam", lr=1e30))
    assert result.status == "diverged", result.message
    assert f"{phases.DIVERGENCE_FACTOR:g} x the reference loss" in result.message
    fresh = MLP([2, 8, 1], dtype=F64).state_dict()
    assert all(torch.equal(value, fresh[key]) for key, value in model.state_dict().items())


def test_a_fit_resumed_from_a_fitted_model_does_not_take_the_grid_refit_for_a_runaway():
    """A later grid phase trained as its own fit (as the sweep trains each phase) starts from a loss
    near rounding; the refit onto the new grid raises it far above 1e6 x that loss, which is not a
    runaway: divergence is judged against the larger of that loss and the zero output's."""
    teacher = KAN([2, 3, 1], num_intervals=5, seed=0, dtype=F64)
    data = _regression(lambda x: teacher(x).detach(), 2)
    gen = torch.Generator().manual_seed(1)
    data["train_label"] = data["train_label"] + 1e-13 * torch.randn(data["train_label"].shape, dtype=F64, generator=gen)
    config = TrainConfig(steps=2, grid_schedule=(7,))
    fitted = [copy.deepcopy(teacher) for _ in range(3)]
    assert train.evaluate(fitted[0], data["train_input"], data["train_label"], "mse")["loss"] < 1e-24
    results = [fit(fitted[0], data, config), *fit_many(fitted[1:], [data] * 2, config, batch="always")]
    assert [result.status for result in results] == ["ok"] * 3, [result.message for result in results]
    assert results[0].history[0]["train_loss"] > 1e6 * 1e-24  # what the loss before training would have flagged
    reference = train.divergence_reference(teacher, data["train_input"], data["train_label"], "mse")
    assert reference == pytest.approx(data["train_label"].square().mean().item())


def test_stacked_fits_apply_the_same_runaway_rule(monkeypatch):
    """With the factor forced below 1 every fit "runs away" at its first recorded step: the stacked
    loop of fit_many stops and restores its members as fit does."""
    monkeypatch.setattr(phases, "DIVERGENCE_FACTOR", 1e-9)
    data, config = _regression(_exp_sin, 2), TrainConfig(steps=3)
    models = [KAN([2, 3, 1], seed=seed, dtype=F64) for seed in range(3)]
    initial = [copy.deepcopy(model.state_dict()) for model in models]
    results = [*fit_many(models[:2], [data] * 2, config, batch="always"), fit(models[2], data, config)]
    for model, before, result in zip(models, initial, results):
        assert result.status == "diverged" and "exceeds 1e-09 x the reference loss" in result.message
        assert result.history == [] and all(torch.equal(v, before[k]) for k, v in model.state_dict().items()
                                          if isinstance(v, torch.Tensor))


def test_negative_class_labels_are_named():
    x = torch.rand(20, 2, dtype=F64)
    labels = torch.zeros(20, dtype=torch.int64)
    labels[4] = -1
    data = {"train_input": x, "train_label": labels, "test_input": x, "test_label": labels.abs()}
    with pytest.raises(ValueError, match=r"train_label has class -1; classes are indices 0..2"):
        fit(KAN([2, 3], dtype=F64), data, TrainConfig(loss="cross_entropy"))


def test_fused_cross_entropy_stays_finite_where_a_probability_underflows():
    from kan.train import loss_and_output_grad

    labels = torch.tensor([0, 0])
    for gap in (5.0, 200.0):  # 200: softmax gives exactly 0 for the true class of the first row
        logits = torch.tensor([[0.0, gap], [1.0, 0.0]], requires_grad=True)
        value, grad = loss_and_output_grad(logits.detach(), labels, "cross_entropy")
        expected = torch.nn.functional.cross_entropy(logits, labels)
        assert torch.isfinite(value) and torch.isclose(value, expected.detach())
        assert torch.allclose(grad, torch.autograd.grad(expected, logits)[0], atol=1e-7)


@pytest.mark.parametrize("options", [{"optimizer": "adam", "lr": 0.01}, {"batch_size": 32}])
def test_the_recorded_penalty_is_the_recorded_models_on_the_whole_train_split(options):
    """Not the last objective call's (before Adam's step, or on a minibatch)."""
    data = _regression(_exp_sin, 2, n=200)
    model = KAN([2, 3, 1], dtype=F64)
    result = fit(model, data, TrainConfig(steps=5, lamb=0.01, lamb_entropy=2.0, **options))
    with torch.no_grad():
        penalty = model.forward_with_penalty(data["train_input"], 1.0, 2.0)[1].item()
    assert result.final["regularization"] == penalty
