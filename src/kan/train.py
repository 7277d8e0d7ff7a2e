"""One trainer for KANs and MLPs: LBFGS or Adam, regression or classification.

A *step* is one ``optimizer.step`` call; for LBFGS that is up to ``lbfgs_max_iter`` (20)
inner iterations with a strong-Wolfe line search, as the reference implementation counts.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kan.layers import fused_layers_backprop, fused_layers_run
from kan.models import KAN
from kan.optim import LBFGS

DATA_KEYS = ("train_input", "train_label", "test_input", "test_label")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a fit; stored with every run.

    ``grid_schedule`` lists G per phase, each phase ``steps`` long; models without a grid
    (MLPs) train for the same total number of steps so KAN/MLP pairs share a budget.
    """

    steps: int = 200
    optimizer: str = "lbfgs"  # "lbfgs" | "adam"
    lr: float = 1.0
    loss: str = "mse"  # "mse" | "cross_entropy"
    lamb: float = 0.0  # sparsification strength λ (KAN only)
    lamb_l1: float = 1.0  # μ1
    lamb_entropy: float = 1.0  # μ2
    grid_schedule: tuple[int, ...] = ()
    grid_update_every: int = 0  # 0: no grid updates inside a phase
    grid_update_until: int = 50  # last in-phase step that may update the grid
    grid_uniform_fraction: float = 1.0
    batch_size: int | None = None  # None: full batch
    lbfgs_max_iter: int = 20
    lbfgs_history: int = 10
    stop_on_test_rise: bool = False  # DeepMind-style early stop at the first rise of held-out loss
    stall_window: int = 0  # 0: every phase runs all its steps; else see stall_tolerance
    stall_tolerance: float = 1e-3  # end a phase once the loss fell by less than this fraction over stall_window steps
    eval_every: int = 1
    seed: int = 0  # minibatch order
    progress: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.steps < 1:
            problems.append(f"steps must be >= 1, got {self.steps}")
        if self.optimizer not in ("lbfgs", "adam"):
            problems.append(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if self.loss not in ("mse", "cross_entropy"):
            problems.append(f"loss must be 'mse' or 'cross_entropy', got {self.loss!r}")
        if self.lamb < 0 or not math.isfinite(self.lamb):
            problems.append(f"lamb must be a finite number >= 0, got {self.lamb}")
        if any(int(g) < 1 for g in self.grid_schedule):
            problems.append(f"grid_schedule entries must be >= 1, got {list(self.grid_schedule)}")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append(f"batch_size must be >= 1 or None, got {self.batch_size}")
        if self.eval_every < 1:
            problems.append(f"eval_every must be >= 1, got {self.eval_every}")
        if self.stall_window < 0:
            problems.append(f"stall_window must be >= 0 (0: off), got {self.stall_window}")
        if not 0 <= self.stall_tolerance < 1:
            problems.append(f"stall_tolerance must lie in [0, 1), got {self.stall_tolerance}")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping, naming any unknown key."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; valid: {sorted(known)}")
        values = dict(values)
        if "grid_schedule" in values:
            values["grid_schedule"] = tuple(int(g) for g in values["grid_schedule"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["grid_schedule"] = list(self.grid_schedule)
        return out


@dataclass
class FitResult:
    """Outcome of a fit: ``status`` is "ok", "diverged" (non-finite loss) or "early_stopped".
    Steps are numbered continuously over the phases (a phase ended by the stall rule is shorter)."""

    status: str
    message: str
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def check_dataset(dataset: Mapping[str, Tensor], model: nn.Module, loss: str) -> None:
    """Validate keys, shapes and finiteness of a dataset before training."""
    missing = [key for key in DATA_KEYS if key not in dataset]
    if missing:
        raise ValueError(f"dataset is missing {missing}; expected keys {list(DATA_KEYS)}")
    n_in, n_out = model.width[0], model.width[-1]
    for split in ("train", "test"):
        inputs, labels = dataset[f"{split}_input"], dataset[f"{split}_label"]
        if inputs.dim() != 2 or inputs.shape[1] != n_in:
            raise ValueError(f"{split}_input must have shape [n, {n_in}] for this model, got {list(inputs.shape)}")
        if labels.shape[0] != inputs.shape[0]:
            raise ValueError(f"{split}_label has {labels.shape[0]} rows but {split}_input has {inputs.shape[0]}")
        if loss == "mse" and (labels.dim() != 2 or labels.shape[1] != n_out):
            raise ValueError(f"{split}_label must have shape [n, {n_out}] for regression, got {list(labels.shape)}")
        if loss == "cross_entropy" and (labels.dim() != 1 or labels.dtype != torch.long):
            raise ValueError(f"{split}_label must be int64 class indices [n] for classification")
        if loss == "cross_entropy" and labels.numel() and int(labels.max()) >= n_out:
            raise ValueError(f"{split}_label has class {int(labels.max())} but the model has {n_out} outputs")
        for name, tensor in ((f"{split}_input", inputs), (f"{split}_label", labels)):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{name} contains NaN or Inf values")


def _data_loss(output: Tensor, labels: Tensor, loss: str) -> Tensor:
    return F.mse_loss(output, labels) if loss == "mse" else F.cross_entropy(output, labels)


def evaluate(model: nn.Module, inputs: Tensor, labels: Tensor, loss: str) -> dict[str, float]:
    """Loss plus RMSE (regression) or accuracy (classification), without gradients."""
    with torch.no_grad():
        output = model(inputs)
        value = _data_loss(output, labels, loss).item()
        if loss == "mse":
            return {"loss": value, "rmse": math.sqrt(value)}
        return {"loss": value, "accuracy": (output.argmax(dim=1) == labels).double().mean().item()}


class _Objective:
    """Loss (data + λ·penalty) on one batch; remembers the parts of the last evaluation."""

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        if config.lamb > 0 and not isinstance(model, KAN):
            raise ValueError("the sparsification penalty (lamb > 0) is defined for KAN models only")
        self.model, self.config = model, config
        self.penalty = 0.0

    def __call__(self, inputs: Tensor, labels: Tensor) -> Tensor:
        if self.config.lamb > 0:
            output, penalty = self.model.forward_with_penalty(inputs, self.config.lamb_l1, self.config.lamb_entropy)
            self.penalty = penalty.item()
            return _data_loss(output, labels, self.config.loss) + self.config.lamb * penalty
        return _data_loss(self.model(inputs), labels, self.config.loss)


class _FusedKANGradient:
    """Loss and flat gradient of a KAN through its layers' fused forward/backward: no autograd
    graph, no ``.grad`` bookkeeping. Applies while the fast path is on, every layer is fusable
    (uniform grid, no symbolic edge) and there is no penalty; gives the same values as autograd.

    The last result is reused when nothing changed since (same batch tensors, parameters not
    written, no :meth:`forget`): each LBFGS step starts where the previous one evaluated last."""

    def __init__(self, model: KAN, params: list[Tensor], loss: str) -> None:
        self.model, self.params, self.loss = model, params, loss
        self.zeros = {id(p): p.new_zeros(p.numel()) for p in params}  # parameters the layers do not touch
        self.last: tuple[Tensor, Tensor, tuple[int, ...], tuple[Tensor, Tensor]] | None = None

    @staticmethod
    def applies(model: nn.Module, config: TrainConfig) -> bool:
        return isinstance(model, KAN) and config.lamb == 0 and all(layer.fusable for layer in model.layers)

    def forget(self) -> None:
        """Drop the remembered result (call after changing the model other than through its parameters)."""
        self.last = None

    def __call__(self, inputs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        versions = tuple(p._version for p in self.params)
        last = self.last
        if last is not None and last[0] is inputs and last[1] is labels and last[2] == versions:
            return last[3]
        result = self._evaluate(inputs, labels)
        self.last = (inputs, labels, versions, result)
        return result

    @torch.no_grad()
    def _evaluate(self, inputs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        layers = self.model.layers
        output, states = fused_layers_run(layers, inputs, input_grad=False)
        value, grad = _loss_and_output_grad(output, labels, self.loss)
        if not math.isfinite(float(value)):  # as the autograd closure: no backward, zero gradient
            return value, torch.cat(list(self.zeros.values()))
        param_grads = fused_layers_backprop(states, grad, input_grad=False)[1]
        touched = (p for layer in layers for p in (layer.coef, layer.scale_base, layer.scale_spline))
        found = dict(zip(map(id, touched), param_grads))
        return value, torch.cat([found[id(p)].reshape(-1) if id(p) in found else self.zeros[id(p)] for p in self.params])


def _loss_and_output_grad(output: Tensor, labels: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    """:func:`_data_loss` and its gradient with respect to ``output``."""
    if loss == "mse":
        diff = output - labels
        return (diff * diff).mean(), diff * (2.0 / diff.numel())
    probabilities = torch.softmax(output, dim=1)
    value = F.nll_loss(torch.log(probabilities), labels)
    probabilities[torch.arange(labels.shape[0], device=labels.device), labels] -= 1.0
    return value, probabilities / labels.shape[0]


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer | LBFGS:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr)
    return LBFGS(
        params, lr=config.lr, max_iter=config.lbfgs_max_iter, history_size=config.lbfgs_history,
        tolerance_grad=1e-32, tolerance_change=1e-32, curvature_eps=1e-32,
    )


def fit(model: nn.Module, dataset: Mapping[str, Tensor], config: TrainConfig | None = None) -> FitResult:
    """Train ``model`` in place on ``dataset`` (keys ``train_input``, ``train_label``, ``test_input``,
    ``test_label``); returns the per-step history and a status. A non-finite loss restores the last
    finite state and stops with status "diverged"."""
    config = config or TrainConfig()
    check_dataset(dataset, model, config.loss)
    objective = _Objective(model, config)
    x_train, y_train = dataset["train_input"], dataset["train_label"]
    generator = torch.Generator().manual_seed(config.seed)
    schedule = list(config.grid_schedule) if config.grid_schedule else [None]
    has_grid = isinstance(model, KAN)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    bar = _progress(config.steps * len(schedule), config.progress)

    def stop(status: str, message: str) -> FitResult:
        model.load_state_dict(last_good)
        bar.close()
        return FitResult(status, message, history, time.perf_counter() - started)

    global_step = 0
    for phase, num_intervals in enumerate(schedule):
        if has_grid and num_intervals is not None and num_intervals != model.num_intervals:
            model.update_grid(x_train, num_intervals, config.grid_uniform_fraction)
        last_good = _snapshot(model)
        optimizer = _make_optimizer(model, config)
        fused = None
        if isinstance(optimizer, LBFGS) and _FusedKANGradient.applies(model, config):
            fused = _FusedKANGradient(model, optimizer.params, config.loss)
        losses: list[float] = []
        for step in range(config.steps):
            if has_grid and config.grid_update_every and step % config.grid_update_every == 0 and 0 < step <= config.grid_update_until:
                model.update_grid(x_train, None, config.grid_uniform_fraction)
                if fused is not None:
                    fused.forget()
            inputs, labels = _batch(x_train, y_train, config.batch_size, generator)
            loss = _optimizer_step(optimizer, objective, inputs, labels, fused)
            global_step += 1
            bar.update(1)
            if not math.isfinite(loss):
                return stop("diverged", f"non-finite training loss at step {global_step}; restored the last finite state")
            losses.append(loss)
            stalled = has_stalled(losses, config, step)
            last_of_phase = stalled or step == config.steps - 1
            if global_step % config.eval_every and not (last_of_phase and phase == len(schedule) - 1) and not stalled:
                continue
            record = _record(model, dataset, config, global_step, objective.penalty)
            if not all(math.isfinite(v) for v in record.values()):
                return stop("diverged", f"non-finite metrics at step {global_step}; restored the last finite state")
            if config.stop_on_test_rise and history and record["test_loss"] > history[-1]["test_loss"]:
                return stop("early_stopped", f"held-out loss rose at step {global_step}; kept step {history[-1]['step']:.0f}")
            record["grid"] = float(model.num_intervals) if has_grid else 0.0
            history.append(record)
            last_good = _snapshot(model)
            if stalled:
                bar.update(config.steps - step - 1)
                break
    bar.close()
    return FitResult("ok", "finished", history, time.perf_counter() - started)


def has_stalled(losses: list[float], config: TrainConfig, step: int) -> bool:
    """The stall rule: ``stall_window`` > 0 steps into a phase, the training loss fell by less than
    ``stall_tolerance`` of its value ``stall_window`` steps earlier (the phase's last step never counts)."""
    window = config.stall_window
    if not window or len(losses) <= window or step == config.steps - 1:
        return False
    before = losses[-window - 1]
    return before - losses[-1] <= config.stall_tolerance * abs(before)


def _snapshot(model: nn.Module) -> dict[str, Any]:
    return {key: value.clone() if isinstance(value, Tensor) else copy.deepcopy(value) for key, value in model.state_dict().items()}


def _optimizer_step(
    optimizer: torch.optim.Optimizer | LBFGS, objective: _Objective, inputs: Tensor, labels: Tensor,
    fused: _FusedKANGradient | None,
) -> float:
    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = objective(inputs, labels)
        if torch.isfinite(loss):
            loss.backward()
        return loss

    if isinstance(optimizer, LBFGS):
        if fused is not None and fused.applies(objective.model, objective.config):  # a grid update may end it
            optimizer.step(lambda: fused(inputs, labels))
        else:
            optimizer.step(closure)
        if objective.config.lamb > 0:  # refresh the reported penalty at the final parameters
            with torch.no_grad():
                objective(inputs, labels)
        return optimizer.last_loss
    loss = closure()
    if torch.isfinite(loss):
        optimizer.step()
    return float(loss.detach())


def _batch(inputs: Tensor, labels: Tensor, batch_size: int | None, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    if batch_size is None or batch_size >= inputs.shape[0]:
        return inputs, labels
    index = torch.randperm(inputs.shape[0], generator=generator)[:batch_size].to(inputs.device)
    return inputs[index], labels[index]


def _record(model: nn.Module, dataset: Mapping[str, Tensor], config: TrainConfig, step: int, penalty: float) -> dict[str, float]:
    train = evaluate(model, dataset["train_input"], dataset["train_label"], config.loss)
    test = evaluate(model, dataset["test_input"], dataset["test_label"], config.loss)
    record = {"step": float(step), "regularization": penalty}
    record.update({f"train_{key}": value for key, value in train.items()})
    record.update({f"test_{key}": value for key, value in test.items()})
    return record


def _progress(total: int, enabled: bool) -> Any:
    if enabled:
        from tqdm.auto import tqdm

        return tqdm(total=total, unit="step")
    return _NoProgress()


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass
