"""Training many models at once: the entry point every sweep uses.

``fit_many`` has the semantics of calling :func:`kan.train.fit` on each (model, dataset, config):
models are trained in place, results come back in input order with the same history records
and statuses. Compatible models are trained together as one batched tensor program: KANs of
one shape, spline order, G and base activation with uniform grids and no symbolic edges (edge
masks are fine), or MLPs of one shape and activation; datasets of the same sizes, dtype and
device; the same config except λ (``lamb``), which may differ per model. Their parameters are
stacked along a model axis (:mod:`kan.batched_layers`) and trained by fit's L-BFGS as a fleet
(:class:`kan.optim.FleetLBFGS`: every model keeps its own state and line search, and one batched
evaluation serves them all); grid switches refit every model's splines by least squares in one
batched call. A stack runs fit's training loop (:func:`kan.phases.run_phases`), model by model: a
model that stops is restored to its last recorded state and frozen without affecting the others,
one that stalls waits for the next phase. Everything else (Adam, minibatches, non-uniform grids,
symbolic edges, other model types, single models) goes through :func:`kan.train.fit` one at a
time. By default (``batch="auto"``) stacks are formed where they pay (see :func:`batching_pays`);
``batch="always"`` stacks every compatible group, ``batch="never"`` none.

On CPU, a stack of KANs without the penalty (λ = 0) is a fleet of single fits: its layers run the
compiled kernel model by model (:mod:`kan.native`'s fleet call) without autograd, and each model's
loss, gradient and metrics are computed from its own outputs as :func:`kan.train.fit` computes
them, so every model's history and parameters equal those of its own fit, bit for bit. Elsewhere
(GPU, no compiler, λ > 0, MLPs) a stack runs the plain-ops reference of :mod:`kan.batched_layers`
under autograd, and differs from ``fit`` by rounding:

* its loss sums (and, off the kernel, its forward and backward) round differently from a single
  fit's, and L-BFGS amplifies such differences over a fit;
* with λ > 0 anywhere in a group, every member's forward sums the per-edge activations (a λ = 0
  member's loss is unchanged up to rounding and its ``regularization`` is recorded as 0, as in ``fit``).

``FitResult.seconds`` (``cpu_seconds``) of a stacked model is the group's wall (CPU) time divided
by the group size.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Hashable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kan import native
from kan.batched_layers import StackedKAN, StackedMLP, stack
from kan.layers import kernel_serves
from kan.models import KAN, MLP
from kan.optim import FleetLBFGS
from kan.phases import Monitor, Phase, phases, run_phases
from kan.train import (
    DATA_KEYS, FitResult, TrainConfig, check_dataset, fit, lbfgs_options, loss_and_output_grad, output_metrics,
    zero_output_loss,
)

BATCH_MODES = ("auto", "always", "never")


def fit_many(
    models: Sequence[nn.Module], datasets: Sequence[Mapping[str, Tensor]],
    config: TrainConfig | Sequence[TrainConfig] | None = None, batch: str = "auto",
) -> list[FitResult]:
    """Train every model on its dataset (``config`` for all, or one config per model); models are
    trained in place and results come back in input order. ``batch``: "always" trains every
    compatible group as one batched program, "never" trains one model at a time, "auto" batches
    where it is expected to be faster (see :func:`batching_pays`)."""
    models, datasets = list(models), list(datasets)
    configs = _per_model(config, len(models))
    if len(models) != len(datasets):
        raise ValueError(f"fit_many got {len(models)} models but {len(datasets)} datasets")
    if len({id(model) for model in models}) != len(models):
        raise ValueError("fit_many got the same model object more than once: give each training its own model "
                         "(copy.deepcopy), or call fit for trainings that must follow one another")
    for index, (model, data, cfg) in enumerate(zip(models, datasets, configs)):
        try:
            check_dataset(data, model, cfg.loss)
        except (TypeError, ValueError) as error:
            raise type(error)(f"datasets[{index}]: {error}") from None
        if isinstance(model, KAN):
            model.forget_inputs()  # as fit does
    results: list[FitResult | None] = [None] * len(models)
    for members in group_indices(models, datasets, configs, batch):
        if len(members) == 1:
            results[members[0]] = fit(models[members[0]], datasets[members[0]], configs[members[0]])
            continue
        group = _fit_group([models[i] for i in members], [datasets[i] for i in members], [configs[i] for i in members])
        for i, result in zip(members, group):
            results[i] = result
    return results  # type: ignore[return-value]


def _per_model(config: TrainConfig | Sequence[TrainConfig] | None, count: int) -> list[TrainConfig]:
    if config is None or isinstance(config, TrainConfig):
        return [config or TrainConfig()] * count
    configs = list(config)
    if len(configs) != count:
        raise ValueError(f"fit_many got {count} models but {len(configs)} configs")
    return configs


def group_indices(
    models: Sequence[nn.Module], datasets: Sequence[Mapping[str, Tensor]], configs: Sequence[TrainConfig],
    batch: str = "auto",
) -> list[list[int]]:
    """Indices of the models trained together, each group in input order, groups ordered by their
    first member; a model that cannot (or, by ``batch``, should not) be batched is a group of its own."""
    if batch not in BATCH_MODES:
        raise ValueError(f"unknown batch mode {batch!r}; valid modes: {', '.join(BATCH_MODES)}")
    groups: dict[Hashable, list[int]] = {}
    for i, (model, data, cfg) in enumerate(zip(models, datasets, configs)):
        wanted = batch == "always" or batch == "auto" and batching_pays(model, data, cfg)
        key = batch_key(model, data, cfg) if wanted else None
        groups.setdefault(("single", i) if key is None else key, []).append(i)
    split = []
    for members in groups.values():
        size = stack_size_limit(models[members[0]], datasets[members[0]]) or len(members)
        split += [members[start : start + size] for start in range(0, len(members), size)]
    return sorted(split)


def stack_size_limit(model: nn.Module, data: Mapping[str, Tensor]) -> int | None:
    """The most KANs like ``model`` one CPU stack holds while each of its layers keeps the per-sample
    buffer a single fit keeps (the kernel's size limit counts the whole stack); None where there
    is no such limit (MLPs, GPUs, no kernel)."""
    inputs = data["train_input"]
    if type(model) is not KAN or inputs.device.type != "cpu" or not native.available():
        return None
    per_model = max(torch.ops.kan.local_size(inputs.shape[0], n_in, model.layers[0].order) for n_in in model.width[:-1])
    return max(1, torch.ops.kan.local_bytes_kept() // (8 * per_model))


def batching_pays(model: nn.Module, data: Mapping[str, Tensor], config: TrainConfig) -> bool:
    """Whether stacking ``model`` with others is expected to pay: on a GPU (per-op launch costs
    dominate small fits there), and on CPU for KANs without the penalty that the compiled kernel
    serves (their stack is a fleet of single fits, no dearer per model, with the same numbers).
    Not for other models on CPU: their stacked rounding would move every number recorded with one
    fit at a time."""
    inputs = data["train_input"]
    if inputs.device.type != "cpu":
        return True
    if type(model) is not KAN or config.lamb != 0:
        return False
    layer = model.layers[0]
    return kernel_serves(inputs, model.dtype, layer.order, layer.base_activation)


def batch_key(model: nn.Module, data: Mapping[str, Tensor], config: TrainConfig) -> Hashable | None:
    """What must match for models to train as one batched program; None when ``model`` has to
    go through :func:`kan.train.fit`."""
    full_batch = config.batch_size is None or config.batch_size >= data["train_input"].shape[0]
    if config.optimizer != "lbfgs" or not full_batch or not all(p.requires_grad for p in model.parameters()):
        return None
    if type(model) is KAN:
        layers = model.layers
        if config.grid_uniform_fraction != 1.0 or any(not layer.uniform or layer.symbolic_names for layer in layers):
            return None
        kind: tuple[Any, ...] = ("KAN", tuple(model.width), layers[0].order, model.num_intervals, layers[0].base_activation)
    elif type(model) is MLP and config.lamb == 0:
        kind = ("MLP", tuple(model.width), model.config()["activation"])
    else:
        return None
    data_key = tuple((key, tuple(data[key].shape), data[key].dtype, data[key].device) for key in DATA_KEYS)
    return kind, model.dtype, str(model.device), data_key, dataclasses.replace(config, lamb=0.0)


def _row_losses(output: Tensor, labels: Tensor, loss: str) -> Tensor:
    """Per-model data loss ``[M]`` of outputs ``[M, B, out]`` (mean squared error or cross-entropy)."""
    if loss == "mse":
        return (output - labels).square().mean(dim=(1, 2))
    return F.cross_entropy(output.transpose(1, 2), labels, reduction="none").mean(dim=1)


class _Snapshot:
    """Parameters and grids of every row of a stack, as they were at some point."""

    def __init__(self, stacked: StackedKAN | StackedMLP) -> None:
        self.params = stacked.params.clone()
        self.grids = [g.clone() for g in stacked.grids]

    def update(self, stacked: StackedKAN | StackedMLP, rows: Tensor) -> None:
        """Take the current state of the rows where ``rows`` (bool ``[M]``) holds."""
        self.params = torch.where(rows[:, None], stacked.params, self.params)
        self.grids = [torch.where(rows[:, None, None], g, old) for g, old in zip(stacked.grids, self.grids)]

    def restore(self, stacked: StackedKAN | StackedMLP, rows: Tensor) -> None:
        """Put the rows where ``rows`` (bool ``[M]``) holds back as they were."""
        stacked.params = torch.where(rows[:, None], self.params, stacked.params)
        stacked.grids = [torch.where(rows[:, None, None], old, g) for g, old in zip(stacked.grids, self.grids)]


class _GroupRun:
    """One batched training of a group, the :class:`kan.phases.Trainee` of :func:`kan.phases.run_phases`:
    models are named by input position (member); stack rows map to ``members``."""

    def __init__(self, models: Sequence[nn.Module], datasets: Sequence[Mapping[str, Tensor]],
                 configs: Sequence[TrainConfig]) -> None:
        self.models, self.config = models, configs[0]
        self.stacked = stack(models)
        self.data = {key: torch.stack([d[key] for d in datasets]) for key in DATA_KEYS}
        self.lamb = torch.tensor([c.lamb for c in configs], dtype=self.stacked.params.dtype, device=self.stacked.params.device)
        self.penalty = bool((self.lamb > 0).any())
        stacked, inputs = self.stacked, self.data["train_input"]
        self.fused = (isinstance(stacked, StackedKAN) and not self.penalty
                      and kernel_serves(inputs, stacked.params.dtype, stacked.order, stacked.activation_name))
        self.members = list(range(len(models)))
        # the rows as of their last record in the current phase (from its start: after the grid switch)
        self.last_good = _Snapshot(self.stacked)
        self.carried = set(self.members)  # members not recorded in this phase yet: their models hold their last record
        self.monitors = [Monitor(config, reference) for config, reference in zip(configs, self._divergence_references())]

    def _divergence_references(self) -> list[float]:
        """Per row, the loss its divergence is judged against, as :func:`kan.train.divergence_reference`."""
        with torch.no_grad():
            output, _ = self.stacked.forward(self.stacked.params, self.data["train_input"])
        zero = [zero_output_loss(out, label, self.config.loss) for out, label in zip(output, self.data["train_label"])]
        return [max(record["train_loss"], z) for record, z in zip(self.records(with_test=False), zero)]

    @property
    def is_kan(self) -> bool:
        return isinstance(self.stacked, StackedKAN)

    def forward(self, params: Tensor, split: str, rows: list[int] | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Outputs, data losses and penalties (None without λ) on a split, of every row, or of the
        stack rows ``rows`` (``params`` holds theirs)."""
        with_penalty = self.penalty and split == "train"
        output, penalty = self.stacked.forward(
            params, self.data[f"{split}_input"], with_penalty, self.config.lamb_l1, self.config.lamb_entropy, rows
        )
        labels = self.data[f"{split}_label"]
        return output, _row_losses(output, labels if rows is None else labels[rows], self.config.loss), penalty

    def objective(self, trial: Tensor, rows: list[int]) -> tuple[Tensor, Tensor]:
        """Training loss ``data + λ·penalty`` ``[R]`` of the stack rows ``rows`` at their trial
        parameters ``[R, n]``, and its gradient (zero where the loss is not finite, as fit's closure)."""
        subset = None if len(rows) == len(self.members) else rows  # rows are distinct and sorted
        if self.fused:
            loss, grad = self._fused_objective(trial, subset)
        else:
            params = trial.detach().requires_grad_(True)
            _, loss, penalty = self.forward(params, "train", subset)
            if penalty is not None:
                loss = loss + (self.lamb if subset is None else self.lamb[subset]) * penalty
            (grad,) = torch.autograd.grad(loss.sum(), params)
            loss = loss.detach()
        return loss, torch.where(torch.isfinite(loss)[:, None], grad, 0.0)

    @torch.no_grad()
    def _fused_objective(self, params: Tensor, rows: list[int] | None) -> tuple[Tensor, Tensor]:
        """:meth:`objective` without autograd: the kernel's fleet forward and backward, and each
        row's loss and output gradient as a single fit computes them (:func:`kan.train.loss_and_output_grad`
        on its own outputs), so a row's numbers are those of its model trained alone."""
        assert isinstance(self.stacked, StackedKAN)
        output, states = self.stacked.fused_run(params, self.data["train_input"], rows)
        labels = self.data["train_label"] if rows is None else self.data["train_label"][rows]
        parts = [loss_and_output_grad(out, label, self.config.loss) for out, label in zip(output, labels)]
        grad = self.stacked.fused_backprop(states, torch.stack([g for _, g in parts]))
        return torch.stack([value for value, _ in parts]), grad

    def compact(self, members: Sequence[int]) -> None:
        """Keep only the rows of ``members`` (the models still training)."""
        live = self._rows(members)
        if len(live) == len(self.members):
            return
        index = torch.tensor(live, device=self.stacked.params.device)
        self.stacked.select(index)
        self.data = {key: value[index] for key, value in self.data.items()}
        self.lamb = self.lamb[index]
        self.members = [self.members[r] for r in live]

    def records(self, with_test: bool) -> list[dict[str, float]]:
        """Per row: ``regularization``, the train (and, if asked, test) metrics and ``grid`` of a
        record, each model's metrics computed from its outputs as :func:`kan.train.evaluate` does."""
        with torch.no_grad():
            train, penalty = self._split_metrics("train")
            test = self._split_metrics("test")[0] if with_test else [{}] * len(self.members)
        lamb = self.lamb.tolist()
        grid = float(self.stacked.num_intervals) if self.is_kan else 0.0
        records = []
        for r in range(len(self.members)):
            record = {"regularization": penalty[r] if penalty is not None and lamb[r] > 0 else 0.0}
            record.update({f"train_{k}": v for k, v in train[r].items()})
            record.update({f"test_{k}": v for k, v in test[r].items()})
            record["grid"] = grid
            records.append(record)
        return records

    def _split_metrics(self, split: str) -> tuple[list[dict[str, float]], list[float] | None]:
        """Per row: the loss and RMSE (or accuracy) on a split, and the penalties (None without λ).
        A fused stack computes each row as :func:`kan.train.evaluate` does (its single fit's numbers);
        others reduce the whole stack at once and read it back in one transfer (one sync on a GPU)."""
        labels = self.data[f"{split}_label"]
        if self.fused:  # no penalty on this path; no stacked losses either, each row has its own
            output, _ = self.stacked.forward(self.stacked.params, self.data[f"{split}_input"])
            return [output_metrics(out, label, self.config.loss) for out, label in zip(output, labels)], None
        output, loss, penalty = self.forward(self.stacked.params, split)
        penalties = None if penalty is None else penalty.tolist()
        values = {"loss": loss}
        if self.config.loss == "mse":
            values["rmse"] = loss.sqrt()
        else:
            values["accuracy"] = (output.argmax(dim=2) == labels).double().mean(dim=1)
        host = torch.stack([v.to(torch.float64) for v in values.values()]).tolist()
        return [dict(zip(values, row)) for row in zip(*host)], penalties

    def _mask(self, rows: Sequence[int]) -> Tensor:
        """The bool mask ``[M]`` of stack rows ``rows``, on the stack's device."""
        mask = torch.zeros(len(self.members), dtype=torch.bool)
        mask[list(rows)] = True
        return mask.to(self.stacked.params.device)

    def _rows(self, members: Sequence[int]) -> list[int]:
        """The stack rows of ``members`` (input positions), in their order."""
        return [self.members.index(member) for member in members]

    def start_phase(self, phase: Phase, members: Sequence[int]) -> None:
        moved_on = [m for m in members if m not in self.carried]  # recorded since their models were written
        if moved_on:  # a stop before this phase's first record keeps their last record, on its grid
            self._write_back(self.last_good, moved_on)
        self.carried = set(members)
        self.compact(members)
        if self.is_kan and phase.num_intervals is not None and phase.num_intervals != self.stacked.num_intervals:
            self.stacked.update_grid(self.data["train_input"], phase.num_intervals, self.config.grid_uniform_fraction)
        self.optimizer = FleetLBFGS(len(self.members), lbfgs_options(self.config))
        self.last_good = _Snapshot(self.stacked)

    def _write_back(self, snapshot: _Snapshot, members: Sequence[int]) -> None:
        """Write ``members``' states in ``snapshot`` into their models; the stack stays as it is."""
        everything = self._mask(range(len(self.members)))
        current = _Snapshot(self.stacked)
        snapshot.restore(self.stacked, everything)
        self.stacked.write_back([self.models[m] for m in members], self._rows(members))
        current.restore(self.stacked, everything)

    def refit_grid(self, members: Sequence[int]) -> None:
        """Refit the grids of ``members`` at their G; the other rows keep theirs."""
        if not self.is_kan:
            return
        active = self._rows(members)
        resting = self._mask([r for r in range(len(self.members)) if r not in active])
        before = _Snapshot(self.stacked)
        self.stacked.update_grid(self.data["train_input"], None, self.config.grid_uniform_fraction)
        before.restore(self.stacked, resting)

    def step(self, members: Sequence[int]) -> list[float]:
        rows = self._rows(members)
        self.stacked.params = self.optimizer.step(self.stacked.params, self.objective, rows)
        return [self.optimizer.loss[row] for row in rows]

    def metrics(self, members: Sequence[int]) -> dict[int, dict[str, float]]:
        records = self.records(with_test=True)
        return {member: records[row] for member, row in zip(members, self._rows(members))}

    def keep(self, members: Sequence[int]) -> None:
        self.last_good.update(self.stacked, self._mask(self._rows(members)))
        self.carried -= set(members)

    def stop(self, member: int) -> None:
        """Freeze a model at its last recorded state and write it back (already there when the
        phase has not recorded it yet)."""
        if member in self.carried:
            return
        (row,) = self._rows([member])
        self.last_good.restore(self.stacked, self._mask([row]))
        self.stacked.write_back([self.models[member]], [row])

    def finish(self, status: Sequence[tuple[str, str]]) -> None:
        """Write the models that finished back from the stack."""
        live = [r for r, member in enumerate(self.members) if status[member][0] == "ok"]
        self.stacked.write_back([self.models[self.members[r]] for r in live], live)


def _fit_group(models: Sequence[nn.Module], datasets: Sequence[Mapping[str, Tensor]],
               configs: Sequence[TrainConfig]) -> list[FitResult]:
    started, cpu_started = time.perf_counter(), time.process_time()
    run = _GroupRun(models, datasets, configs)
    status = run_phases(run, run.monitors, phases(configs[0]), configs[0].progress)
    run.finish(status)
    seconds = (time.perf_counter() - started) / len(models)
    cpu_seconds = (time.process_time() - cpu_started) / len(models)
    return [FitResult(state, message, monitor.history, seconds, cpu_seconds)
            for (state, message), monitor in zip(status, run.monitors)]
