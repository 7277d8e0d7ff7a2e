"""One trainer for KANs and MLPs: LBFGS or Adam, regression or classification.

A *step* is one ``optimizer.step`` call; for LBFGS that is up to ``lbfgs_max_iter`` (20)
inner iterations with a strong-Wolfe line search, as the reference implementation counts.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kan.layers import fused_layers_backprop, fused_layers_run
from kan.models import KAN
from kan.optim import LBFGS, LBFGSOptions
from kan.phases import Monitor, Phase, phases, run_phases
from kan.spline import MAX_GRID

DATA_KEYS = ("train_input", "train_label", "test_input", "test_label")
OPTIMIZERS = ("lbfgs", "adam")
LOSSES = ("mse", "cross_entropy")
_INT_MINIMUM = {  # integer options and their least valid value
    "steps": 1, "grid_update_every": 0, "grid_update_until": 0, "lbfgs_max_iter": 1, "lbfgs_history": 1,
    "stall_window": 0, "eval_every": 1,
}


class TrainConfigError(ValueError):
    """Invalid :class:`TrainConfig` values; ``problems`` maps each bad option to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("invalid TrainConfig: " + "; ".join(f"{name} {what}" for name, what in self.problems.items()))


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_grid_schedule(schedule: Any) -> bool:
    """A tuple of integers in [1, MAX_GRID], strictly increasing."""
    return (isinstance(schedule, tuple) and all(_is_int(g) and 1 <= g <= MAX_GRID for g in schedule)
            and all(a < b for a, b in zip(schedule, schedule[1:])))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a fit; stored with every run.

    ``grid_schedule`` lists G per phase (strictly increasing, at most :data:`MAX_GRID`), each phase
    ``steps`` long; models without a grid (MLPs) train for the same total number of steps so KAN/MLP
    pairs share a budget. Every option is checked on construction (:class:`TrainConfigError`).
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
    grid_update_until: int = 50  # in-phase steps below this may update the grid
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
        schedule = self.grid_schedule
        if hasattr(schedule, "tolist"):  # a numpy array: its plain ints, stored with every run
            schedule = schedule.tolist()
        if isinstance(schedule, (list, range)):
            object.__setattr__(self, "grid_schedule", tuple(schedule))
        problems = self.problems()
        if problems:
            raise TrainConfigError(problems)

    def problems(self) -> dict[str, str]:
        """Option -> what is wrong with its value (types and ranges); empty when all are valid."""
        checks = {name: (_is_int(getattr(self, name)) and getattr(self, name) >= least, f"be an integer >= {least}")
                  for name, least in _INT_MINIMUM.items()}
        checks["seed"] = (_is_int(self.seed) and 0 <= self.seed < 2**64, "be an integer in [0, 2**64)")  # torch's range
        checks |= {name: (_is_finite(getattr(self, name)) and getattr(self, name) >= 0, "be a finite number >= 0")
                   for name in ("lamb", "lamb_l1", "lamb_entropy")}
        checks |= {name: (isinstance(getattr(self, name), bool), "be True or False")
                   for name in ("stop_on_test_rise", "progress")}
        fraction, tolerance, batch = self.grid_uniform_fraction, self.stall_tolerance, self.batch_size
        checks |= {
            "optimizer": (self.optimizer in OPTIMIZERS, f"be one of {', '.join(map(repr, OPTIMIZERS))}"),
            "loss": (self.loss in LOSSES, f"be one of {', '.join(map(repr, LOSSES))}"),
            "lr": (_is_finite(self.lr) and self.lr > 0, "be a finite number > 0"),
            "grid_schedule": (_is_grid_schedule(self.grid_schedule), f"be strictly increasing integers in [1, {MAX_GRID}]"),
            "grid_uniform_fraction": (_is_finite(fraction) and 0 <= fraction <= 1, "lie in [0, 1]"),
            "stall_tolerance": (_is_finite(tolerance) and 0 <= tolerance < 1, "lie in [0, 1)"),
            "batch_size": (batch is None or _is_int(batch) and batch >= 1, "be None or an integer >= 1"),
        }
        return {name: f"must {what}, got {getattr(self, name)!r}" for name, (ok, what) in checks.items() if not ok}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping, naming any unknown key."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; valid: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["grid_schedule"] = list(self.grid_schedule)
        return out


@dataclass
class FitResult:
    """Outcome of a fit: ``status`` is "ok", "diverged" (non-finite loss, or a training loss above
    :data:`kan.phases.DIVERGENCE_FACTOR` x its reference loss, :func:`divergence_reference`) or "early_stopped".
    Steps are numbered continuously over the phases (a phase ended by the stall rule is shorter)."""

    status: str
    message: str
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0  # wall time
    cpu_seconds: float = 0.0  # this process's CPU time (wall time grows on a busy machine, this does not)

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def check_dataset(dataset: Mapping[str, Tensor], model: nn.Module, loss: str) -> None:
    """Validate keys, types, dtypes, shapes and finiteness of a dataset before training.

    Nothing is converted: every value must be a ``torch.Tensor`` (wrap numpy arrays with
    ``torch.as_tensor``) with the model's floating dtype; classification labels are int64 class
    indices. A mismatch is a TypeError naming the key and the dtype expected."""
    missing = [key for key in DATA_KEYS if key not in dataset]
    if missing:
        unknown = [key for key in dataset if key not in DATA_KEYS]
        also = f" (it has unknown keys {unknown})" if unknown else ""
        raise ValueError(f"dataset is missing {missing}{also}; expected keys {list(DATA_KEYS)}")
    _check_types(dataset, model.dtype, loss)
    n_in, n_out = model.width[0], model.width[-1]
    for split in ("train", "test"):
        inputs, labels = dataset[f"{split}_input"], dataset[f"{split}_label"]
        if inputs.dim() != 2 or inputs.shape[1] != n_in:
            raise ValueError(f"{split}_input must have shape [n, {n_in}] for this model, got {list(inputs.shape)}")
        if inputs.shape[0] == 0:
            raise ValueError(f"{split}_input has no rows; the {split} split needs at least one sample")
        if labels.shape[0] != inputs.shape[0]:
            raise ValueError(f"{split}_label has {labels.shape[0]} rows but {split}_input has {inputs.shape[0]}")
        if loss == "mse" and (labels.dim() != 2 or labels.shape[1] != n_out):
            raise ValueError(f"{split}_label must have shape [n, {n_out}] for regression, got {list(labels.shape)}")
        if loss == "cross_entropy" and labels.dim() != 1:
            raise ValueError(f"{split}_label must be int64 class indices [n] for classification")
        if loss == "cross_entropy" and int(labels.max()) >= n_out:
            raise ValueError(f"{split}_label has class {int(labels.max())} but the model has {n_out} outputs")
        if loss == "cross_entropy" and int(labels.min()) < 0:
            raise ValueError(f"{split}_label has class {int(labels.min())}; classes are indices 0..{n_out - 1}")
        for name, tensor in ((f"{split}_input", inputs), (f"{split}_label", labels)):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{name} contains NaN or Inf values")


def _check_types(dataset: Mapping[str, Any], dtype: torch.dtype, loss: str) -> None:
    """TypeError unless every value is a tensor of the model's ``dtype`` (int64 for class labels)."""
    for key in DATA_KEYS:
        value = dataset[key]
        if not isinstance(value, Tensor):
            kind = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
            raise TypeError(f"{key} must be a torch.Tensor, got {kind}; convert it with torch.as_tensor")
        labels = loss == "cross_entropy" and key.endswith("_label")
        expected, meaning = (torch.long, "class indices") if labels else (dtype, "the model's dtype")
        if value.dtype != expected:
            raise TypeError(f"{key} has dtype {value.dtype}, expected {expected} ({meaning}); convert it with .to({expected})")


def _data_loss(output: Tensor, labels: Tensor, loss: str) -> Tensor:
    return F.mse_loss(output, labels) if loss == "mse" else F.cross_entropy(output, labels)


def evaluate(model: nn.Module, inputs: Tensor, labels: Tensor, loss: str) -> dict[str, float]:
    """Loss plus RMSE (regression) or accuracy (classification), without gradients."""
    with torch.no_grad():
        return output_metrics(model(inputs), labels, loss)


def zero_output_loss(output: Tensor, labels: Tensor, loss: str) -> float:
    """The data loss of an all-zero output shaped as ``output``: the targets' mean square (MSE),
    log C for C classes (cross-entropy)."""
    return _data_loss(torch.zeros_like(output), labels, loss).item()


def divergence_reference(model: nn.Module, inputs: Tensor, labels: Tensor, loss: str) -> float:
    """The loss a fit's divergence is judged against (:func:`kan.phases.divergence_limit`): the
    larger of the model's training loss now and :func:`zero_output_loss`. The second keeps a fit
    that starts from an already fitted model (a later grid phase, its loss near rounding) from
    taking the grid refit's rounding error for a runaway."""
    with torch.no_grad():
        output = model(inputs)
    return max(_data_loss(output, labels, loss).item(), zero_output_loss(output, labels, loss))


def output_metrics(output: Tensor, labels: Tensor, loss: str) -> dict[str, float]:
    """:func:`evaluate`'s values from a model's outputs ``[n, out]``."""
    value = _data_loss(output, labels, loss).item()
    if loss == "mse":
        return {"loss": value, "rmse": math.sqrt(value)}
    return {"loss": value, "accuracy": (output.argmax(dim=1) == labels).double().mean().item()}


class _Objective:
    """Loss (data + λ·penalty) on one batch."""

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        if config.lamb > 0 and not isinstance(model, KAN):
            raise ValueError("the sparsification penalty (lamb > 0) is defined for KAN models only")
        self.model, self.config = model, config

    def __call__(self, inputs: Tensor, labels: Tensor) -> Tensor:
        if self.config.lamb > 0:
            output, penalty = self.model.forward_with_penalty(inputs, self.config.lamb_l1, self.config.lamb_entropy)
            return _data_loss(output, labels, self.config.loss) + self.config.lamb * penalty
        return _data_loss(self.model(inputs), labels, self.config.loss)


class _FusedKANGradient:
    """Loss and flat gradient of a KAN through its layers' fused forward/backward: no autograd
    graph, no ``.grad`` bookkeeping. Applies while the fast path is on, every layer is fusable
    (:attr:`KANLayer.fusable`) and there is no penalty; gives autograd's values up to rounding.

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
        value, grad = loss_and_output_grad(output, labels, self.loss)
        if not math.isfinite(float(value)):  # as the autograd closure: no backward, zero gradient
            return value, torch.cat(list(self.zeros.values()))
        param_grads = fused_layers_backprop(states, grad, input_grad=False)[1]
        touched = (p for layer in layers for p in (layer.coef, layer.scale_base, layer.scale_spline))
        found = dict(zip(map(id, touched), param_grads))
        return value, torch.cat([found[id(p)].reshape(-1) if id(p) in found else self.zeros[id(p)] for p in self.params])


def loss_and_output_grad(output: Tensor, labels: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    """:func:`_data_loss` and its gradient with respect to ``output``."""
    if loss == "mse":
        diff = output - labels
        return (diff * diff).mean(), diff * (2.0 / diff.numel())
    probabilities = torch.softmax(output, dim=1)
    value = F.nll_loss(torch.log(probabilities), labels)
    if not torch.isfinite(value):  # a probability underflowed to 0: log_softmax keeps the loss finite
        value = F.cross_entropy(output, labels)
    probabilities[torch.arange(labels.shape[0], device=labels.device), labels] -= 1.0
    return value, probabilities / labels.shape[0]


def lbfgs_options(config: TrainConfig) -> LBFGSOptions:
    """The L-BFGS settings of a fit; tolerances so small that every step runs its full iteration budget."""
    return LBFGSOptions(lr=config.lr, max_iter=config.lbfgs_max_iter, history_size=config.lbfgs_history,
                        tolerance_grad=1e-32, tolerance_change=1e-32, curvature_eps=1e-32)


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer | LBFGS:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr)
    return LBFGS(params, **asdict(lbfgs_options(config)))


def fit(model: nn.Module, dataset: Mapping[str, Tensor], config: TrainConfig | None = None) -> FitResult:
    """Train ``model`` in place on ``dataset`` (keys ``train_input``, ``train_label``, ``test_input``,
    ``test_label``, tensors of the model's dtype: see :func:`check_dataset`); returns the per-step
    history and a status. A non-finite loss, or a recorded training loss above
    :func:`kan.phases.divergence_limit`, restores the last good (recorded) state and stops with
    status "diverged"."""
    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig (TrainConfig.from_dict builds one from a mapping), "
                        f"got {type(config).__name__}")
    check_dataset(dataset, model, config.loss)
    if isinstance(model, KAN):
        model.forget_inputs()  # a grid or mask changed through .data before the fit is seen
    started, cpu_started = time.perf_counter(), time.process_time()
    run = _SingleRun(model, dataset, config)
    monitor = Monitor(config, divergence_reference(model, run.x_train, run.y_train, config.loss))
    schedule = phases(config)
    ((status, message),) = run_phases(run, [monitor], schedule, config.progress)
    return FitResult(status, message, monitor.history, time.perf_counter() - started, time.process_time() - cpu_started)


class _SingleRun:
    """One model's training, the :class:`kan.phases.Trainee` (of one row, 0) that :func:`fit` runs."""

    def __init__(self, model: nn.Module, dataset: Mapping[str, Tensor], config: TrainConfig) -> None:
        self.model, self.dataset, self.config = model, dataset, config
        self.objective = _Objective(model, config)
        self.x_train, self.y_train = dataset["train_input"], dataset["train_label"]
        self.generator = torch.Generator().manual_seed(config.seed)  # minibatch order
        self.has_grid = isinstance(model, KAN)
        self.last_good = _snapshot(model)  # the state of the last record (before one: the model as given)

    def start_phase(self, phase: Phase, rows: Sequence[int]) -> None:
        if self.has_grid and phase.num_intervals is not None and phase.num_intervals != self.model.num_intervals:
            self.model.update_grid(self.x_train, phase.num_intervals, self.config.grid_uniform_fraction)
        self.optimizer = _make_optimizer(self.model, self.config)
        self.fused = None
        if isinstance(self.optimizer, LBFGS) and _FusedKANGradient.applies(self.model, self.config):
            self.fused = _FusedKANGradient(self.model, self.optimizer.params, self.config.loss)

    def refit_grid(self, rows: Sequence[int]) -> None:
        if self.has_grid:
            self.model.update_grid(self.x_train, None, self.config.grid_uniform_fraction)
            if self.fused is not None:
                self.fused.forget()

    def step(self, rows: Sequence[int]) -> list[float]:
        inputs, labels = _batch(self.x_train, self.y_train, self.config.batch_size, self.generator)
        return [_optimizer_step(self.optimizer, self.objective, inputs, labels, self.fused)]

    def metrics(self, rows: Sequence[int]) -> dict[int, dict[str, float]]:
        grid = float(self.model.num_intervals) if self.has_grid else 0.0
        return {0: {**_metrics(self.model, self.dataset, self.config), "grid": grid}}

    def keep(self, rows: Sequence[int]) -> None:
        self.last_good = _snapshot(self.model)

    def stop(self, row: int) -> None:
        self.model.load_state_dict(self.last_good)  # a KAN layer takes the state's G (KANLayer._load_from_state_dict)


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


def _penalty(model: nn.Module, inputs: Tensor, config: TrainConfig) -> float:
    """The sparsification penalty of ``model`` on ``inputs``; 0 without one (λ = 0)."""
    if config.lamb <= 0:
        return 0.0
    with torch.no_grad():
        return model.forward_with_penalty(inputs, config.lamb_l1, config.lamb_entropy)[1].item()


def _metrics(model: nn.Module, dataset: Mapping[str, Tensor], config: TrainConfig) -> dict[str, float]:
    """A record's numbers: the penalty (0 without one) and the losses of ``model`` as it is, on
    the whole train and test splits (not on the last batch, nor before an Adam step)."""
    train = evaluate(model, dataset["train_input"], dataset["train_label"], config.loss)
    test = evaluate(model, dataset["test_input"], dataset["test_label"], config.loss)
    record = {"regularization": _penalty(model, dataset["train_input"], config)}
    record.update({f"train_{key}": value for key, value in train.items()})
    record.update({f"test_{key}": value for key, value in test.items()})
    return record
