"""Sweep expansion: a validated config becomes a list of *trainings*, pure and deterministic.

A training is one model (KAN or MLP, one seed) taken through the experiment's grid
schedule. A KAN training records one *run* per grid phase (the model as it stands at the
end of that phase; training phases 1..k is exactly the run "grid schedule cut after k"),
so the run for every G has its own config id. An MLP training records one run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from itertools import product
from typing import Any, Mapping, Sequence

from kan.data import task_names, task_size
from kan.records.ids import canonical_json, config_id

_FLOAT_TRAIN_KEYS = ("lr", "lamb_l1", "lamb_entropy", "grid_uniform_fraction", "stall_tolerance")


@dataclass(frozen=True)
class Stage:
    """One recorded run of a training: the state after ``phases`` grid phases."""

    phases: int
    grid: int  # G of the last phase (0 for an MLP)
    run_id: str


@dataclass(frozen=True)
class Training:
    """Everything that decides one model's training, plus the runs it records."""

    experiment: str
    family: str
    dataset: str
    data: dict[str, Any]  # {"spec": overrides, "seed": data seed}
    model: dict[str, Any]  # {"kind": "kan"|"mlp", "hidden": [..] | "paper", ...}
    variant: str  # unpruned | pruned | human | mlp
    seed: int
    dtype: str
    train: dict[str, Any]  # TrainConfig options; grid_schedule is the full schedule
    prune: dict[str, Any] | None = None  # {"lamb": λ, "threshold": θ} for the pruned variant
    stages: tuple[Stage, ...] = field(default=())

    @property
    def kind(self) -> str:
        return self.model["kind"]

    @property
    def group_key(self) -> str:
        """Trainings equal in everything but the seed share a key (trained together)."""
        payload = {k: v for k, v in self.identity().items() if k != "seed"}
        return canonical_json(payload)

    def identity(self, phases: int | None = None) -> dict[str, Any]:
        """The payload hashed into a run id; ``phases`` cuts the grid schedule."""
        train = dict(self.train)
        if phases is not None:
            train["grid_schedule"] = train["grid_schedule"][:phases]
        return {
            "experiment": self.experiment, "family": self.family, "dataset": self.dataset,
            "data": self.data, "model": self.model, "variant": self.variant, "seed": self.seed,
            "dtype": self.dtype, "train": train, "prune": self.prune,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Training":
        values = dict(values)
        values["stages"] = tuple(Stage(**s) for s in values.get("stages", ()))
        return cls(**values)


def dataset_names(experiment: Mapping[str, Any]) -> list[str]:
    """The experiment's task names, with ``"all"`` expanded."""
    names = experiment["datasets"]
    return task_names(experiment["family"]) if names == "all" else list(names)


def data_spec(config: Mapping[str, Any], family: str, name: str) -> dict[str, Any]:
    """Spec overrides for one dataset: the family's entry, then the task's."""
    specs = config["datasets"]["specs"]
    return {**specs.get(family, {}), **specs.get(f"{family}/{name}", {})}


def _normalise_train(train: Mapping[str, Any]) -> dict[str, Any]:
    """Same options, same id: floats written as ints (``lr: 1``) become floats."""
    out = {key: (float(value) if key in _FLOAT_TRAIN_KEYS else value) for key, value in train.items()}
    out["grid_schedule"] = [int(g) for g in out["grid_schedule"]]
    return out


def _with_stages(training: Training) -> Training:
    schedule = training.train["grid_schedule"]
    if training.kind == "mlp":
        stages = (Stage(len(schedule), 0, config_id(training.identity())),)
    else:
        stages = tuple(Stage(k, schedule[k - 1], config_id(training.identity(k))) for k in range(1, len(schedule) + 1))
    return replace(training, stages=stages)


def cut_training(training: Training, phases: int) -> Training:
    """``training`` stopped after its first ``phases`` grid phases (a KAN); its runs keep their ids."""
    train = {**training.train, "grid_schedule": training.train["grid_schedule"][:phases]}
    return _with_stages(replace(training, train=train, stages=()))


def _models(block_kan: Mapping[str, Any], block_mlp: Mapping[str, Any]) -> list[tuple[dict, str, dict | None]]:
    """(model spec, variant, prune spec) for every model configuration of an experiment."""
    out: list[tuple[dict, str, dict | None]] = []
    order = block_kan["order"]
    if block_kan["paper_shape"]:
        out.append(({"kind": "kan", "hidden": "paper", "order": order}, "human", None))
    for width, depth in product(block_kan["widths"], block_kan["depths"]):
        spec = {"kind": "kan", "hidden": [width] * (depth - 1), "order": order}
        if block_kan["unpruned"]:
            out.append((spec, "unpruned", None))
        for lamb in block_kan["prune"]["lambdas"]:
            out.append((spec, "pruned", {"lamb": float(lamb), "threshold": float(block_kan["prune"]["threshold"])}))
    for width, depth, activation in product(block_mlp["widths"], block_mlp["depths"], block_mlp["activations"]):
        out.append(({"kind": "mlp", "hidden": [width] * (depth - 1), "activation": activation}, "mlp", None))
    return out


def _seeds(experiment: Mapping[str, Any], kind: str) -> list[int]:
    """The seeds of an experiment's ``kind`` models: the MLP block's own, where it names them."""
    own = experiment["mlp"]["seeds"] if kind == "mlp" else None
    return list(experiment["seeds"] if own is None else own)


TERMINAL = ("diverged", "early_stopped", "failed")  # statuses that end a training early


def finishing_runs(training: Training, records: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records (``records`` maps run id to record) that finish ``training``: its last run, or
    a run whose status ended it early, each only with the runs of every phase before it. The
    runner and the published records' progress both decide "done" from these."""
    ids = [stage.run_id for stage in training.stages]
    found = [records[i] for i in ids if i in records]
    return [r for r in found if (r["run_id"] == ids[-1] or r["status"] in TERMINAL)
            and all(i in records for i in ids[: ids.index(r["run_id"])])]


def expand(config: Mapping[str, Any]) -> list[Training]:
    """Every training of a validated config, in a stable order."""
    trainings = []
    for key, experiment in config["experiments"].items():
        train = _normalise_train(experiment["train"])
        models = _models(experiment["kan"], experiment["mlp"])
        for name in dataset_names(experiment):
            data = {"spec": data_spec(config, experiment["family"], name), "seed": config["datasets"]["seed"]}
            for model, variant, prune in models:
                for seed in _seeds(experiment, model["kind"]):
                    training = Training(key, experiment["family"], name, data, model, variant, seed, config["dtype"], train,
                                        prune)
                    trainings.append(_with_stages(training))
    return trainings


def chunks(trainings: list[Training], size: int) -> dict[str, list[Training]]:
    """Jobs of at most ``size`` trainings, named ``<experiment>/<dataset>/<index>``.

    Trainings of one experiment and dataset are sorted so that seeds of one configuration
    sit next to each other (they are trained together by ``fit_many``).
    """
    by_dataset: dict[tuple[str, str], list[Training]] = {}
    for training in trainings:
        by_dataset.setdefault((training.experiment, training.dataset), []).append(training)
    jobs = {}
    for (experiment, dataset), group in by_dataset.items():
        group = sorted(group, key=lambda t: (t.group_key, t.seed))
        for index in range(0, len(group), size):
            jobs[f"{experiment}/{dataset}/{index // size}"] = group[index:index + size]
    return jobs


def datasets_used(trainings: list[Training]) -> dict[tuple[str, str], dict[str, Any]]:
    """(family, name) -> {"spec", "seed"} of every dataset the trainings need."""
    return {(t.family, t.dataset): t.data for t in trainings}


def total_steps(training: Training) -> int:
    """Optimizer steps of a training (one step = one optimizer step, up to
    ``lbfgs_max_iter`` LBFGS inner iterations); the pruned variant adds its sparsification phase."""
    steps = training.train["steps"] * len(training.train["grid_schedule"])
    return steps + (training.train["steps"] if training.prune else 0)


def chunk_cost(trainings: Sequence[Training]) -> int:
    """A rough cost of one chunk, known before its data exist: optimizer steps × training rows
    × sampled variables, summed over its trainings. It tells a 100-input, 10000-row chunk from
    the rest; it does not price model sizes."""
    cost = 0
    for training in trainings:
        variables, rows = task_size(training.family, training.dataset, training.data["spec"])
        cost += total_steps(training) * rows * variables
    return cost


def experiment_order(jobs: Mapping[str, Sequence[Training]]) -> list[str]:
    """Experiments in the order their training should start (``jobs`` as :func:`chunks` names
    them): the one whose costliest chunk costs most first, so that the longest job does not end
    the run; on a tie the one with more trainings, whose MLflow logging then overlaps the others'
    training."""
    largest: dict[str, int] = {}
    trainings: dict[str, int] = {}
    for name, group in jobs.items():
        experiment = name.split("/", 1)[0]
        largest[experiment] = max(largest.get(experiment, 0), chunk_cost(group))
        trainings[experiment] = trainings.get(experiment, 0) + len(group)
    return sorted(largest, key=lambda e: (-largest[e], -trainings[e], e))


def chunk_priorities(jobs: Mapping[str, Sequence[Training]], by_dataset: bool = False) -> dict[str, int]:
    """Scheduling priority (from 1; higher runs first) of every ``experiment/dataset`` of ``jobs``
    (named as :func:`chunks` names them): experiments in :func:`experiment_order`, each one
    level. With ``by_dataset``, every dataset its own level, in name order within its experiment,
    so that a run over several shards completes one dataset after another instead of
    interleaving their chunks."""
    order = experiment_order(jobs)
    groups = sorted({name.rsplit("/", 1)[0] for name in jobs},
                    key=lambda group: (order.index(group.split("/", 1)[0]), group))
    level_of = {group: group if by_dataset else group.split("/", 1)[0] for group in groups}
    levels: dict[str, int] = {}
    for group in reversed(groups):  # the last to run gets 1
        levels.setdefault(level_of[group], len(levels) + 1)
    return {group: levels[level_of[group]] for group in groups}
