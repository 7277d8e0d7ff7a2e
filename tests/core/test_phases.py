"""Grid phases, the stop rules and the training loop that fit and fit_many share."""

import math

import pytest
import torch

from kan import KAN, MLP
from kan.batched import fit_many
from kan.phases import Monitor, Verdict, phases, run_phases
from kan.train import TrainConfig, evaluate, fit


def _metrics(train_loss=1.0, test_loss=1.0):
    return lambda: {"train_loss": train_loss, "test_loss": test_loss, "grid": 3.0}


def test_phases_follow_the_grid_schedule():
    config = TrainConfig(steps=6, grid_schedule=(3, 5), grid_update_every=2, grid_update_until=4)
    schedule = phases(config)
    assert [(p.num_intervals, p.steps, p.last) for p in schedule] == [(3, 6, False), (5, 6, True)]
    assert [step for step in range(6) if schedule[0].updates_grid(step)] == [0, 2]  # pykan: step % 2 == 0 and step < 4
    assert [(p.num_intervals, p.last) for p in phases(TrainConfig(steps=3))] == [(None, True)]
    assert not any(phases(TrainConfig(steps=6))[0].updates_grid(step) for step in range(6))


def test_records_are_due_every_eval_every_steps_and_at_the_end():
    config = TrainConfig(steps=4, grid_schedule=(3, 5), eval_every=3)
    monitor = Monitor(config, reference_loss=1.0)
    for phase in phases(config):
        for step in range(phase.steps):
            verdict = monitor.after_step(phase, step, 1.0 - 0.01 * monitor.step, _metrics())
            assert verdict.stop is None and not verdict.end_phase
    assert [record["step"] for record in monitor.history] == [3.0, 6.0, 8.0]
    assert list(monitor.history[0]) == ["step", "train_loss", "test_loss", "grid"]


def test_a_stalled_phase_ends_early_and_steps_stay_numbered_continuously():
    config = TrainConfig(steps=6, grid_schedule=(3, 5), stall_window=2, stall_tolerance=0.1)
    monitor = Monitor(config, reference_loss=1.0)
    first, second = phases(config)
    losses = [1.0, 0.5, 0.49, 0.48]  # 0.5 -> 0.48 over two steps: less than 10 %
    verdicts = [monitor.after_step(first, step, loss, _metrics()) for step, loss in enumerate(losses)]
    assert [v.end_phase for v in verdicts] == [False, False, False, True] and verdicts[-1].recorded
    assert monitor.after_step(second, 0, 0.3, _metrics()).recorded
    assert [record["step"] for record in monitor.history] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_stops_name_the_step_and_the_reason():
    config = TrainConfig(steps=5, eval_every=2, stop_on_test_rise=True)
    (phase,) = phases(config)
    monitor = Monitor(config, reference_loss=1.0)
    assert monitor.after_step(phase, 0, 1.0, _metrics(train_loss=1e7)).stop is None  # not recorded: not judged
    stop = monitor.after_step(phase, 1, 1.0, _metrics(train_loss=1e7)).stop
    assert stop[0] == "diverged" and "loss 1e+07 at step 2 exceeds 1e+06 x the reference loss" in stop[1]
    assert Monitor(config, 1.0).after_step(phase, 0, math.nan, _metrics()).stop == (
        "diverged", "non-finite training loss at step 1; restored the last finite state")
    assert monitor.after_step(phase, 2, 1.0, _metrics(test_loss=math.inf)).stop is None  # not due
    assert monitor.after_step(phase, 3, 1.0, _metrics(test_loss=math.inf)).stop[1].startswith("non-finite metrics at step 4")
    rising = Monitor(TrainConfig(steps=5, stop_on_test_rise=True), 1.0)
    assert rising.after_step(phase, 0, 1.0, _metrics(test_loss=0.5)).recorded
    assert rising.after_step(phase, 1, 1.0, _metrics(test_loss=0.6)).stop == (
        "early_stopped", "held-out loss rose at step 2; kept step 1")


class _ScriptedTrainee:
    """Rows whose training losses follow a script (row -> losses per step over all phases); logs every call."""

    def __init__(self, losses):
        self.losses, self.calls, self.steps = losses, [], {row: 0 for row in losses}

    def start_phase(self, phase, rows):
        self.calls.append(("start", phase.num_intervals, tuple(rows)))

    def refit_grid(self, rows):
        self.calls.append(("refit", tuple(rows)))

    def step(self, rows):
        self.calls.append(("step", tuple(rows)))
        out = [self.losses[row][self.steps[row]] for row in rows]
        for row in rows:
            self.steps[row] += 1
        return out

    def metrics(self, rows):
        return {row: {"train_loss": self.losses[row][self.steps[row] - 1], "test_loss": 1.0, "grid": 0.0} for row in rows}

    def keep(self, rows):
        self.calls.append(("keep", tuple(rows)))

    def stop(self, row):
        self.calls.append(("stop", row))


def test_the_loop_steps_each_row_until_it_stops_or_stalls():
    config = TrainConfig(steps=4, grid_schedule=(3, 5), grid_update_every=2, grid_update_until=3,
                         stall_window=1, stall_tolerance=0.1)
    trainee = _ScriptedTrainee({
        0: [1.0, 0.5, 0.25, 0.12, 0.06, 0.03, 0.015, 0.007],  # trains throughout
        1: [1.0, math.nan],  # diverges at its second step
        2: [1.0, 0.99, 0.5, 0.25, 0.12, 0.06],  # stalls at its second step, goes on in the next phase
    })
    monitors = [Monitor(config, reference_loss=2.0) for _ in range(3)]
    status = run_phases(trainee, monitors, phases(config))
    assert status == [("ok", "finished"), ("diverged", "non-finite training loss at step 2; restored the last finite state"),
                      ("ok", "finished")]
    assert trainee.calls[:8] == [
        ("start", 3, (0, 1, 2)), ("refit", (0, 1, 2)), ("step", (0, 1, 2)), ("keep", (0, 1, 2)),
        ("step", (0, 1, 2)), ("stop", 1), ("keep", (0, 2)),  # row 2 ends its phase (stalled) after a record
        ("refit", (0,)),
    ]
    assert ("start", 5, (0, 2)) in trainee.calls and ("stop", 1) not in trainee.calls[6:]
    assert [r["step"] for r in monitors[0].history] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert [r["step"] for r in monitors[2].history] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # the stall shortened phase 1


@pytest.mark.parametrize("trainer", ["fit", "fit_many"])
@pytest.mark.parametrize("one_fit_per_phase", [False, True])
@pytest.mark.parametrize("kind, eval_every", [("kan", 1), ("kan", 2), ("mlp", 2)])
def test_a_stop_before_a_phases_first_record_keeps_the_model_of_the_last_record(
        monkeypatch, trainer, one_fit_per_phase, kind, eval_every):
    """A stop at the first step after a grid switch (divergence, or stop_on_test_rise catching the rise
    a switch causes) leaves each model as its last record describes it, on that record's grid: the
    whole-schedule fit and the runner's one fit per phase alike, also when the last step before the
    switch was not recorded (eval_every 2: the last record is at step 2 of 3)."""
    x = torch.rand(300, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:] ** 2)
    data = {"train_input": x[:200], "train_label": y[:200], "test_input": x[200:], "test_label": y[200:]}
    judge = Monitor.after_step

    def stop_after_the_switch(self, phase, step, loss, metrics):
        if phase.num_intervals == 10 and step == 0:
            self.step += 1
            return Verdict(stop=("diverged", "stopped for the test"))
        return judge(self, phase, step, loss, metrics)

    build = (lambda seed: KAN([2, 3, 1], seed=seed, dtype=torch.float64)) if kind == "kan" else (
        lambda seed: MLP([2, 4, 1], seed=seed, dtype=torch.float64))
    models = [build(seed) for seed in (0, 1)]
    train = (lambda config: fit_many(models, [data] * 2, config, batch="always")) if trainer == "fit_many" else (
        lambda config: [fit(models[0], data, config)])
    schedules = [(3,), (10,)] if one_fit_per_phase else [(3, 10)]
    monkeypatch.setattr(Monitor, "after_step", stop_after_the_switch)
    results = [train(TrainConfig(steps=3, grid_schedule=schedule, eval_every=eval_every)) for schedule in schedules]
    last_step = 3 if one_fit_per_phase or eval_every == 1 else 2  # a fit's last step is always recorded
    exact = kind == "kan" or trainer == "fit"  # a stack of MLPs records its own rounding of the same numbers
    for row, model in enumerate(models[:len(results[0])]):
        last = [r[row] for r in results if r[row].history][-1].final
        assert results[-1][row].status == "diverged" and last["step"] == last_step
        if kind == "kan":
            assert model.num_intervals == last["grid"] == 3
        rmse = evaluate(model, data["test_input"], data["test_label"], "mse")["rmse"]
        assert rmse == (last["test_rmse"] if exact else pytest.approx(last["test_rmse"], rel=1e-12))
