"""The training loop: grid phases, stop rules and their order, for one model or a fleet.

A training runs one phase per G of its grid schedule (:func:`phases`). After every step a
:class:`Monitor` judges the step's training loss and, when a record is due, the record: the
training goes on, ends its phase (the stall rule) or stops ("diverged", "early_stopped"). Steps are
numbered continuously over the phases, so a phase ended by the stall rule is shorter.

:func:`run_phases` is the one loop that applies these rules; what it trains is a :class:`Trainee`:
one model (:func:`kan.train.fit`) or a stack of models trained in lockstep
(:func:`kan.batched.fit_many`), each model a row with its own monitor.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

if TYPE_CHECKING:
    from kan.train import TrainConfig

DIVERGENCE_FACTOR = 1e6  # a fit whose training loss exceeds this x its reference loss has diverged


@dataclass(frozen=True)
class Phase:
    """One grid phase: its G (None: the model's grid as it is), its length and its in-phase grid refits."""

    num_intervals: int | None
    steps: int
    last: bool  # the training's last phase
    update_every: int  # grid_update_every
    update_until: int  # grid_update_until

    def updates_grid(self, step: int) -> bool:
        """Whether the grid is refit (at its current G) before in-phase step ``step`` (counted from 0):
        at steps 0, every, 2·every, … below ``update_until``, as the reference implementation's ``fit``."""
        return bool(self.update_every) and step % self.update_every == 0 and step < self.update_until


def phases(config: TrainConfig) -> list[Phase]:
    """The phases of a training: one per G of ``grid_schedule`` (one phase without a schedule)."""
    schedule = list(config.grid_schedule) or [None]
    return [Phase(num_intervals, config.steps, i == len(schedule) - 1, config.grid_update_every, config.grid_update_until)
            for i, num_intervals in enumerate(schedule)]


def divergence_limit(reference_loss: float) -> float:
    """The training loss above which a fit has run away: :data:`DIVERGENCE_FACTOR` x its reference
    loss, the larger of its loss before training and the loss of an all-zero output
    (:func:`kan.train.divergence_reference`; no limit when that is 0 or not finite)."""
    return DIVERGENCE_FACTOR * reference_loss if 0 < reference_loss < math.inf else math.inf


def runaway_message(loss: float, step: int) -> str:
    """The "diverged" message of a finite training loss above :func:`divergence_limit`."""
    return (f"training loss {loss:.3g} at step {step} exceeds {DIVERGENCE_FACTOR:g} x the reference loss (the larger "
            "of the loss before training and that of an all-zero output); restored the last good state")


def has_stalled(losses: list[float], config: TrainConfig, step: int) -> bool:
    """The stall rule: ``stall_window`` > 0 steps into a phase, the training loss fell by less than
    ``stall_tolerance`` of its value ``stall_window`` steps earlier (the phase's last step never counts)."""
    window = config.stall_window
    if not window or len(losses) <= window or step == config.steps - 1:
        return False
    before = losses[-window - 1]
    return before - losses[-1] <= config.stall_tolerance * abs(before)


@dataclass(frozen=True)
class Verdict:
    """What follows a step: ``stop`` (status, message) ends the training at its last recorded state;
    ``end_phase`` (the stall rule) moves it on to its next phase; ``recorded``: the step was recorded."""

    recorded: bool = False
    end_phase: bool = False
    stop: tuple[str, str] | None = None


class Monitor:
    """The stop, divergence and stall rules of one training, and the history of its records."""

    def __init__(self, config: TrainConfig, reference_loss: float) -> None:
        """``reference_loss``: what divergence is judged against (:func:`divergence_limit`)."""
        self.config = config
        self.limit = divergence_limit(reference_loss)
        self.history: list[dict[str, float]] = []
        self.step = 0  # steps run, over all phases
        self._losses: list[float] = []  # the training losses of the current phase

    def after_step(self, phase: Phase, step: int, loss: float, metrics: Callable[[], dict[str, float]]) -> Verdict:
        """Judge in-phase step ``step`` (from 0) of ``phase`` by its training ``loss``; ``metrics()``
        gives a record's values but its step number, and is called only when a record is due."""
        self.step += 1
        if step == 0:
            self._losses = []
        if not math.isfinite(loss):
            return Verdict(stop=("diverged", f"non-finite training loss at step {self.step}; restored the last finite state"))
        self._losses.append(loss)
        stalled = has_stalled(self._losses, self.config, step)
        final = phase.last and step == phase.steps - 1
        if self.step % self.config.eval_every and not (stalled or final):
            return Verdict()
        record = {"step": float(self.step), **metrics()}
        if not all(math.isfinite(value) for value in record.values()):
            return Verdict(stop=("diverged", f"non-finite metrics at step {self.step}; restored the last finite state"))
        if record["train_loss"] > self.limit:
            return Verdict(stop=("diverged", runaway_message(record["train_loss"], self.step)))
        if self.config.stop_on_test_rise and self.history and record["test_loss"] > self.history[-1]["test_loss"]:
            kept = self.history[-1]["step"]
            return Verdict(stop=("early_stopped", f"held-out loss rose at step {self.step}; kept step {kept:.0f}"))
        self.history.append(record)
        return Verdict(recorded=True, end_phase=stalled)


class Trainee(Protocol):
    """What :func:`run_phases` trains: models numbered 0..M-1 (rows), each stepped only while active."""

    def start_phase(self, phase: Phase, rows: Sequence[int]) -> None:
        """Enter ``phase`` with the live ``rows``: set their G and start a fresh optimizer; their
        last good state stays that of their last record (before one: the model as given), so a
        stop before the phase's first record returns each to it, on its grid."""

    def refit_grid(self, rows: Sequence[int]) -> None:
        """Refit the grids of ``rows`` from the training inputs at their current G."""

    def step(self, rows: Sequence[int]) -> list[float]:
        """One optimizer step of ``rows``; their training losses, in the order of ``rows``."""

    def metrics(self, rows: Sequence[int]) -> dict[int, dict[str, float]]:
        """A record's values (all but the step number) of each of ``rows``."""

    def keep(self, rows: Sequence[int]) -> None:
        """Take the current state of ``rows`` as their last good one."""

    def stop(self, row: int) -> None:
        """Put ``row`` back to its last good state; it trains no more."""


def run_phases(trainee: Trainee, monitors: Sequence[Monitor], schedule: Sequence[Phase],
               progress: bool = False) -> list[tuple[str, str]]:
    """Train every row of ``trainee`` through ``schedule`` under its monitor (``monitors[row]``, whose
    history collects the records), with a progress bar of steps if asked. Returns each row's
    (status, message)."""
    bar = _progress(sum(phase.steps for phase in schedule), progress)
    status = [("ok", "finished")] * len(monitors)
    for phase in schedule:
        live = [row for row, (state, _) in enumerate(status) if state == "ok"]
        if not live:
            break
        trainee.start_phase(phase, live)
        active = list(live)
        for step in range(phase.steps):
            if not active:
                bar.update(phase.steps - step)
                break
            if phase.updates_grid(step):
                trainee.refit_grid(active)
            losses = trainee.step(active)
            bar.update(1)
            records = functools.cache(lambda rows=tuple(active): trainee.metrics(rows))
            recorded = []
            for row, loss in zip(list(active), losses):
                verdict = monitors[row].after_step(phase, step, loss, lambda row=row: records()[row])
                if verdict.stop is not None:
                    trainee.stop(row)
                    status[row] = verdict.stop
                if verdict.stop is not None or verdict.end_phase:
                    active.remove(row)
                if verdict.recorded:
                    recorded.append(row)
            if recorded:
                trainee.keep(recorded)
    bar.close()
    return status


def _progress(total: int, enabled: bool) -> Any:
    if enabled:
        from tqdm.auto import tqdm  # deferred: only a fit that shows a progress bar needs it

        return tqdm(total=total, unit="step")
    return _NoProgress()


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass
