"""Knot theory with KANs (paper §4.3): the signature from hyperbolic invariants.

Data come from :mod:`kan.data.knot` (task ``deepmind``: DeepMind's CSV read from a configured
path; task ``snappy``: the shipped SnapPy table), split into fit / validation / test rows with
the knot module's duplicate policy and class mapping (even signatures → class indices).

Supervised part: a KAN ``[17, 1, C]`` against DeepMind's MLP (3 × 300 sigmoid, Adam, batch 64,
stopped at the first rise of the validation loss, checked every ``mlp_eval_every`` steps) and
the same MLP trained for a fixed, longer budget; KANs on the three key inputs and on one input
each; first-layer edge scores as feature importances; symbolic signature formulas scored as
classifiers. Unsupervised part: ``[18, 1, 1]`` KANs with a Gaussian output that separate real
rows from feature-permuted ones; each seed's important inputs, grouped across seeds.

Conventions: inputs are z-scored with the fit rows' mean and standard deviation (a constant
column keeps scale 1). A formula ``f`` predicts the signature ``2·round(s·f/2)``; ``s = 1``
("raw") and ``s`` chosen on the fit rows to maximise accuracy ("fitted") are both reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import sympy
import torch
from torch import Tensor

from kan.data import DatasetRequest, GeneratedData
from kan.data.knot import CLASS_COLUMN, TASKS as KNOT_TASKS
from kan.data.knot_snappy import INPUT_COLUMNS, TARGET
from kan.data.synthetic import permuted_negatives
from kan.models import KAN, MLP
from kan.science.stages import Stages
from kan.symbolic import auto_symbolic, symbolic_formula
from kan.train import FitResult, TrainConfig, evaluate, fit

MU_R, MU_I, LAMBDA = "meridinal_translation_real", "meridinal_translation_imag", "longitudinal_translation"
KEY_INPUTS = (MU_R, MU_I, LAMBDA)
SHORT_NAMES = {MU_R: "mu_r", MU_I: "mu_i", LAMBDA: "lambda"}
UNSUPERVISED_COLUMNS = (*INPUT_COLUMNS, TARGET)

_SYMBOLS = {column: sympy.Symbol(name if name != "lambda" else "lam", real=True) for column, name in SHORT_NAMES.items()}
mu_r, mu_i, lam = (_SYMBOLS[c] for c in KEY_INPUTS)
PAPER_FORMULAS: dict[str, tuple[sympy.Expr, float]] = {  # name -> (formula, paper's accuracy)
    "A (DeepMind)": (lam * mu_r / (mu_r**2 + mu_i**2), 0.831),
    "E (KAN + Pade)": (4.76 * lam * mu_r / (3.09 * mu_i + 6.05 * mu_r**2 + 3.54 * mu_i**2), 0.828),
}

# the paper's table: model -> (test accuracy, parameters); "MLP no early stop" is the public
# critique's longer-trained MLP on the full data
PAPER_ACCURACY = {
    "MLP early stop": (0.780, 3e5), "MLP no early stop": (0.96, 3e5), "KAN [17,1,C]": (0.816, 2e2), "KAN key inputs": (0.782, None),
    f"KAN {SHORT_NAMES[MU_R]} alone": (0.650, None), f"KAN {SHORT_NAMES[MU_I]} alone": (0.438, None),
}

# relations the paper's unsupervised runs rediscovered, as input sets; the paper writes the cusp
# volume as mu_r·lambda, the data's definition is lambda·mu_i (see relation_checks)
KNOWN_RELATIONS: dict[str, frozenset[str]] = {
    "signature ~ mu_r, lambda": frozenset({TARGET, MU_R, LAMBDA}),
    "cusp_volume ~ lambda, mu_i": frozenset({"cusp_volume", LAMBDA, MU_I}),
    "cusp_volume ~ lambda, mu_r (paper)": frozenset({"cusp_volume", LAMBDA, MU_R}),
    "injectivity_radius ~ short_geodesic_real_part": frozenset({"injectivity_radius", "short_geodesic_real_part"}),
}


@dataclass(frozen=True)
class KnotConfig:
    """Data source, model sizes and budgets; defaults finish in minutes on 2 cores."""

    source: str = "deepmind"  # knot task: "deepmind" | "snappy"
    path: str | None = None  # None: the knot task's default path
    dedup: bool = True
    split_seed: int = 0
    seed: int = 0
    kan_grid: int = 3
    kan_order: int = 3
    kan_steps: int = 30  # LBFGS steps, full batch (train accuracy plateaus by ~20)
    mlp_width: tuple[int, ...] = (300, 300, 300)
    mlp_activation: str = "sigmoid"
    mlp_lr: float = 1e-3
    mlp_batch_size: int = 64
    mlp_max_steps: int = 10_000
    mlp_eval_every: int = 100
    mlp_converged_steps: int = 4_000
    formula_width: tuple[int, ...] = (3, 2, 1)
    formula_steps: int = 30
    formula_library: tuple[str, ...] = ("x", "x^2", "1/x", "sqrt", "exp", "log", "tanh", "sin")
    formula_samples: int = 400  # rows used for the symbolic fits
    unsup_lambdas: tuple[float, ...] = (1e-2, 1e-3)
    unsup_seeds: tuple[int, ...] = (0, 1, 2)
    unsup_steps: int = 30
    unsup_rows: int | None = 2000  # real rows (from the fit rows) per unsupervised fit; None: all
    unsup_width: float = 0.5  # initial Gaussian width w of exp(-h²/(2w²))
    importance_threshold: float = 0.1  # input kept when its score ≥ this × the largest score
    overlap_threshold: float = 0.5  # Jaccard index that merges two input sets into one cluster
    extra: Mapping[str, Any] = field(default_factory=dict)  # spec overrides for the data task

    def __post_init__(self) -> None:
        if self.source not in KNOT_TASKS:  # else the plan would ask the data job for a knot task that is not there
            raise ValueError(f"source must be one of {', '.join(KNOT_TASKS)}, got {self.source!r}")

    @classmethod
    def paper(cls, **overrides: Any) -> "KnotConfig":
        """The paper's scale: 100 unsupervised seeds, longer budgets."""
        values: dict[str, Any] = {
            "kan_steps": 200, "mlp_converged_steps": 50_000, "formula_steps": 200,
            "formula_samples": 2000, "unsup_seeds": tuple(range(100)), "unsup_steps": 100, "unsup_rows": None,
        }
        return cls(**{**values, **overrides})

    def dataset(self) -> DatasetRequest:
        """The knot dataset these settings read: task ``source`` with its spec, split by ``split_seed``."""
        spec = {"dedup": self.dedup, **self.extra}
        if self.path is not None:
            spec["path"] = self.path
        return DatasetRequest("knot", self.source, spec, self.split_seed)


@dataclass
class KnotData:
    """Fit / validation / test rows, the class list and the z-score statistics of the fit rows."""

    fit: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    classes: list[int]
    meta: dict[str, Any]

    def stats(self, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (1 for a constant column) of ``columns`` on the fit rows."""
        values = self.fit[list(columns)].to_numpy(dtype=np.float64)
        std = values.std(axis=0)
        return values.mean(axis=0), np.where(std > 0, std, 1.0)

    def inputs(self, frame: pd.DataFrame, columns: Sequence[str], dtype: torch.dtype = torch.float32) -> Tensor:
        """z-scored ``columns`` of ``frame`` as ``[n, len(columns)]``."""
        mean, std = self.stats(columns)
        return _tensor((frame[list(columns)].to_numpy(dtype=np.float64) - mean) / std, dtype)

    def classification(self, columns: Sequence[str], holdout: str = "val") -> dict[str, Tensor]:
        """A :func:`kan.train.fit` dataset: fit rows against ``holdout`` rows, class labels."""
        other = getattr(self, holdout)
        return {
            "train_input": self.inputs(self.fit, columns), "test_input": self.inputs(other, columns),
            "train_label": _tensor(self.fit[CLASS_COLUMN].to_numpy(), torch.long),
            "test_label": _tensor(other[CLASS_COLUMN].to_numpy(), torch.long),
        }


def _tensor(values: np.ndarray, dtype: torch.dtype) -> Tensor:
    """A contiguous tensor copy of ``values`` (pandas hands out column-major, read-only arrays)."""
    return torch.tensor(np.ascontiguousarray(values), dtype=dtype)


def load_knot_data(config: KnotConfig = KnotConfig(), dataset: GeneratedData | Path | str | None = None) -> KnotData:
    """Split the configured knot source into fit / validation / test rows: ``dataset`` (in memory
    or a dataset folder, checked against ``config``), or generated in memory when None."""
    data = config.dataset().load(dataset)
    train = data.train
    return KnotData(
        fit=train[train["split"] == "train"].reset_index(drop=True),
        val=train[train["split"] == "val"].reset_index(drop=True),
        test=data.test.reset_index(drop=True),
        classes=list(data.meta["classes"]),
        meta=data.meta,
    )


# ---------------------------------------------------------------- supervised models


def train_kan(data: KnotData, columns: Sequence[str], hidden: Sequence[int], config: KnotConfig) -> tuple[KAN, FitResult]:
    """KAN ``[len(columns), *hidden, C]`` trained with cross-entropy (full-batch LBFGS)."""
    dataset = data.classification(columns)
    model = KAN([len(columns), *hidden, len(data.classes)], config.kan_grid, config.kan_order, seed=config.seed)
    model.update_grid(dataset["train_input"])
    result = fit(model, dataset, TrainConfig(steps=config.kan_steps, loss="cross_entropy", seed=config.seed))
    return model, result


def train_mlp(data: KnotData, config: KnotConfig, early_stop: bool) -> tuple[MLP, FitResult]:
    """DeepMind's MLP on all inputs: Adam, minibatches; ``early_stop`` stops at the first rise of
    the validation loss (checked every ``mlp_eval_every`` steps), else runs ``mlp_converged_steps``."""
    dataset = data.classification(INPUT_COLUMNS)
    model = MLP([len(INPUT_COLUMNS), *config.mlp_width, len(data.classes)], config.mlp_activation, seed=config.seed)
    steps = config.mlp_max_steps if early_stop else config.mlp_converged_steps
    train_config = TrainConfig(
        steps=steps, optimizer="adam", lr=config.mlp_lr, loss="cross_entropy", batch_size=config.mlp_batch_size,
        stop_on_test_rise=early_stop, eval_every=config.mlp_eval_every, seed=config.seed,
    )
    return model, fit(model, dataset, train_config)


def heldout_accuracy(model: KAN | MLP, data: KnotData, columns: Sequence[str]) -> float:
    """Accuracy of ``model`` on the test rows."""
    dataset = data.classification(columns, holdout="test")
    return evaluate(model, dataset["test_input"], dataset["test_label"], "cross_entropy")["accuracy"]


def _row(name: str, model: KAN | MLP, result: FitResult, data: KnotData, columns: Sequence[str]) -> dict[str, Any]:
    paper_accuracy, paper_params = PAPER_ACCURACY.get(name, (None, None))
    return {
        "model": name, "shape": str(model.width), "inputs": ",".join(SHORT_NAMES.get(c, c) for c in columns),
        "params": model.num_parameters(), "test_accuracy": heldout_accuracy(model, data, columns),
        "val_accuracy": result.final.get("test_accuracy"), "steps": int(result.final.get("step", 0)),
        "status": result.status, "seconds": result.seconds,
        "paper_accuracy": paper_accuracy, "paper_params": paper_params,
    }


def majority_accuracy(data: KnotData) -> float:
    """Test accuracy of always predicting the most frequent fit-row class."""
    majority = data.fit[CLASS_COLUMN].mode().iloc[0]
    return float((data.test[CLASS_COLUMN] == majority).mean())


def model_comparison(data: KnotData, config: KnotConfig = KnotConfig()) -> tuple[pd.DataFrame, KAN]:
    """KAN ``[17, 1, C]`` vs the early-stopped and the longer-trained MLP; also returns the KAN."""
    kan, kan_result = train_kan(data, INPUT_COLUMNS, [1], config)
    rows = [_row("KAN [17,1,C]", kan, kan_result, data, INPUT_COLUMNS)]
    for name, early in (("MLP early stop", True), ("MLP no early stop", False)):
        mlp, result = train_mlp(data, config, early)
        rows.append(_row(name, mlp, result, data, INPUT_COLUMNS))
    rows.append({"model": "majority class", "params": 0, "test_accuracy": majority_accuracy(data)})
    return pd.DataFrame(rows), kan


def feature_importance(model: KAN, data: KnotData, columns: Sequence[str] = INPUT_COLUMNS) -> pd.DataFrame:
    """First-layer edge scores (paper's mean |φ|) summed over a KAN's first hidden nodes, ranked."""
    scores = model.edge_scores(data.inputs(data.fit, columns, model.dtype))[0].sum(dim=1)
    frame = pd.DataFrame({"column": list(columns), "score": scores.double().numpy()})
    frame["name"] = frame["column"].map(lambda c: SHORT_NAMES.get(c, c))
    frame["relative"] = frame["score"] / frame["score"].max()
    frame = frame.sort_values("score", ascending=False, ignore_index=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame


def ablations(data: KnotData, config: KnotConfig = KnotConfig()) -> pd.DataFrame:
    """KAN ``[3, 1, C]`` on the three key inputs and ``[1, 1, C]`` KANs on each alone."""
    runs = [("KAN key inputs", list(KEY_INPUTS))] + [(f"KAN {SHORT_NAMES[c]} alone", [c]) for c in KEY_INPUTS]
    rows = []
    for name, columns in runs:
        model, result = train_kan(data, columns, [1], config)
        rows.append(_row(name, model, result, data, columns))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- formulas


def formula_values(expr: sympy.Expr, frame: pd.DataFrame) -> np.ndarray:
    """``expr`` (in the symbols of :data:`KEY_INPUTS`) evaluated on every row of ``frame``."""
    symbols = [_SYMBOLS[c] for c in KEY_INPUTS]
    function = sympy.lambdify(symbols, expr, modules="numpy")
    values = function(*(frame[c].to_numpy(dtype=np.float64) for c in KEY_INPUTS))
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (len(frame),))


def signature_prediction(values: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The even integer nearest to ``scale · values``."""
    return 2 * np.round(scale * values / 2)


def fit_scale(values: np.ndarray, signature: np.ndarray) -> float:
    """The scale ``s`` (|s| in [0.01, 10], either sign) whose rounded prediction is most accurate;
    the middle of the best ones when several tie."""
    magnitudes = np.logspace(-2, 1, 601)
    scales = np.concatenate([-magnitudes[::-1], magnitudes])
    finite = np.isfinite(values)
    hits = (signature_prediction(values[finite][None, :], scales[:, None]) == signature[finite]).sum(axis=1)
    best = np.flatnonzero(hits == hits.max())
    return float(scales[best[len(best) // 2]])


def score_formula(expr: sympy.Expr, data: KnotData) -> dict[str, float]:
    """Test accuracy of ``expr`` as a signature predictor at scale 1 and at the fitted scale."""
    fit_values, test_values = formula_values(expr, data.fit), formula_values(expr, data.test)
    scale = fit_scale(fit_values, data.fit[TARGET].to_numpy())
    truth = data.test[TARGET].to_numpy()
    return {
        "raw_accuracy": float((signature_prediction(test_values) == truth).mean()),
        "fitted_scale": scale,
        "fitted_accuracy": float((signature_prediction(test_values, scale) == truth).mean()),
    }


def kan_signature_formula(data: KnotData, config: KnotConfig = KnotConfig()) -> tuple[sympy.Expr, KAN]:
    """Regress the signature on the z-scored key inputs with a small KAN (``formula_width``), snap
    every edge to ``formula_library``, refit the affine parameters and return the formula in the
    raw inputs (the z-scoring substituted back)."""
    x_fit, x_val = (data.inputs(f, KEY_INPUTS, torch.float64) for f in (data.fit, data.val))
    y_fit, y_val = (_tensor(f[[TARGET]].to_numpy(dtype=np.float64), torch.float64) for f in (data.fit, data.val))
    dataset = {"train_input": x_fit, "train_label": y_fit, "test_input": x_val, "test_label": y_val}
    model = KAN(list(config.formula_width), config.kan_grid, config.kan_order, seed=config.seed, dtype=torch.float64)
    model.update_grid(x_fit)
    fit(model, dataset, TrainConfig(steps=config.formula_steps, seed=config.seed))
    sample = x_fit[torch.randperm(len(x_fit), generator=torch.Generator().manual_seed(config.seed))[: config.formula_samples]]
    auto_symbolic(model, sample, library=config.formula_library)
    fit(model, dataset, TrainConfig(steps=max(1, config.formula_steps // 4), seed=config.seed))
    mean, std = data.stats(KEY_INPUTS)
    variables = [(_SYMBOLS[c] - m) / s for c, m, s in zip(KEY_INPUTS, mean, std)]
    return symbolic_formula(model, variables)[0], model


def formula_table(data: KnotData, extra: Mapping[str, sympy.Expr] | None = None) -> pd.DataFrame:
    """The paper's formulas A and E (and ``extra`` ones) scored as signature predictors."""
    formulas = {name: expr for name, (expr, _) in PAPER_FORMULAS.items()}
    formulas.update(extra or {})
    rows = []
    for name, expr in formulas.items():
        paper = PAPER_FORMULAS.get(name, (None, None))[1]
        rows.append({"formula": name, "expression": str(expr.evalf(4)), **score_formula(expr, data), "paper_accuracy": paper})
    return pd.DataFrame(rows)


def relation_checks(frame: pd.DataFrame) -> pd.DataFrame:
    """How exactly the known relations hold on the rows: cusp volume as λ·μ_i and as λ·|μ_r|
    (max relative error), and 2·injectivity radius ≤ Re(short geodesic) (fraction of rows)."""
    cusp, lam_values = frame["cusp_volume"].to_numpy(), frame[LAMBDA].to_numpy()
    checks = {
        "cusp_volume = lambda*mu_i": np.abs(cusp - lam_values * frame[MU_I].to_numpy()) / np.abs(cusp),
        "cusp_volume = lambda*|mu_r|": np.abs(cusp - lam_values * frame[MU_R].abs().to_numpy()) / np.abs(cusp),
    }
    rows = [{"relation": k, "max_relative_error": float(v.max()), "rows_within_1e-5": float((v < 1e-5).mean())}
            for k, v in checks.items()]
    bound = 2 * frame["injectivity_radius"].to_numpy() <= frame["short_geodesic_real_part"].to_numpy() * (1 + 1e-5)
    rows.append({"relation": "2*injectivity_radius <= short_geodesic_real_part", "rows_within_1e-5": float(bound.mean())})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- unsupervised discovery


def unsupervised_dataset(data: KnotData, seed: int, rows: int | None = None) -> dict[str, Tensor]:
    """``rows`` random fit rows (all if None; label 1) plus a column-permuted copy (label 0),
    against the validation rows and their permuted copy."""
    rng = np.random.default_rng(seed)
    mean, std = data.stats(UNSUPERVISED_COLUMNS)
    fit_rows = data.fit if rows is None else data.fit.iloc[np.sort(rng.permutation(len(data.fit))[:rows])]
    out = {}
    for split, frame in (("train", fit_rows), ("test", data.val)):
        real = frame[list(UNSUPERVISED_COLUMNS)]
        both = np.concatenate([real.to_numpy(dtype=np.float64), permuted_negatives(real, rng).to_numpy(dtype=np.float64)])
        out[f"{split}_input"] = _tensor((both - mean) / std, torch.float32)
        labels = np.concatenate([np.ones(len(real)), np.zeros(len(real))])
        out[f"{split}_label"] = _tensor(labels[:, None], torch.float32)
    return out


def train_unsupervised(dataset: Mapping[str, Tensor], lamb: float, seed: int, config: KnotConfig) -> KAN:
    """``[18, 1, 1]`` KAN whose output edge is fixed to the Gaussian exp(-h²/(2w²)), trained with
    MSE to output 1 on real rows and 0 on permuted ones, with sparsification ``lamb``."""
    model = KAN([len(UNSUPERVISED_COLUMNS), 1, 1], config.kan_grid, config.kan_order, seed=seed)
    model.update_grid(dataset["train_input"])
    model.layers[1].set_symbolic(0, 0, "gaussian", (1 / (np.sqrt(2) * config.unsup_width), 0.0, 1.0, 0.0))
    fit(model, dataset, TrainConfig(steps=config.unsup_steps, lamb=lamb, seed=seed))
    return model


def important_set(scores: np.ndarray, threshold: float) -> frozenset[str]:
    """Names of the columns whose score reaches ``threshold`` × the largest score."""
    keep = scores >= threshold * scores.max()
    return frozenset(c for c, k in zip(UNSUPERVISED_COLUMNS, keep) if k)


def unsupervised_run(dataset: Mapping[str, Tensor], lamb: float, seed: int, config: KnotConfig) -> dict[str, Any]:
    """One (λ, seed) run: separation accuracy, first-layer scores and the important inputs."""
    model = train_unsupervised(dataset, lamb, seed, config)
    scores = model.edge_scores(dataset["train_input"])[0][:, 0].double().numpy()
    with torch.no_grad():
        hits = (model(dataset["test_input"]) > 0.5).float() == dataset["test_label"]
    variables = important_set(scores, config.importance_threshold)
    return {
        "lamb": lamb, "seed": seed, "val_accuracy": float(hits.float().mean()),
        "variables": tuple(sorted(variables, key=UNSUPERVISED_COLUMNS.index)), "n_variables": len(variables),
        **{f"score:{c}": s for c, s in zip(UNSUPERVISED_COLUMNS, scores)},
    }


def unsupervised_runs(data: KnotData, config: KnotConfig = KnotConfig(), stages: Stages | None = None) -> pd.DataFrame:
    """One row per (λ, seed) (:func:`unsupervised_run`), each a stage of ``stages``."""
    return pd.DataFrame((stages or Stages()).run_many(unsupervised_stages(data, config)))


def unsupervised_stages(data: KnotData, config: KnotConfig) -> dict[str, Callable[[], dict[str, Any]]]:
    """The (λ, seed) runs as independent stages, by stage name; the runs of one seed computed
    one after another share its dataset (built only when a run of it is computed)."""

    @lru_cache(maxsize=1)
    def dataset(seed: int) -> dict[str, Tensor]:
        return unsupervised_dataset(data, seed, config.unsup_rows)

    def run(seed: int, lamb: float) -> dict[str, Any]:
        return unsupervised_run(dataset(seed), lamb, seed, config)

    return {f"unsupervised-seed{seed}-lamb{lamb!r}": partial(run, seed, lamb)
            for seed in config.unsup_seeds for lamb in config.unsup_lambdas}


def cluster_sets(runs: pd.DataFrame, overlap: float = 0.5) -> pd.DataFrame:
    """Group the runs' important sets: identical sets are one group; groups whose sets overlap
    (Jaccard ≥ ``overlap``) join one cluster. One row per cluster: union, core, runs."""
    sets = [frozenset(v) for v in runs["variables"]]
    distinct = sorted(set(sets), key=lambda s: (-sets.count(s), sorted(s)))
    parent = list(range(len(distinct)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, a in enumerate(distinct):
        for j in range(i):
            if len(a & distinct[j]) / len(a | distinct[j]) >= overlap:
                parent[root(i)] = root(j)
    rows = []
    for cluster in sorted({root(i) for i in range(len(distinct))}):
        members = [s for i, s in enumerate(distinct) if root(i) == cluster]
        picked = runs[[s in members for s in sets]]
        rows.append({
            "union": _names(frozenset().union(*members)), "core": _names(frozenset.intersection(*members)),
            "n_runs": len(picked), "n_distinct_sets": len(members),
            "runs": ";".join(f"lamb={r.lamb:g}/seed={r.seed}" for r in picked.itertuples()),
        })
    return pd.DataFrame(rows).sort_values("n_runs", ascending=False, ignore_index=True)


def _names(columns: frozenset[str]) -> str:
    return ",".join(SHORT_NAMES.get(c, c) for c in sorted(columns, key=UNSUPERVISED_COLUMNS.index))


def known_relations(runs: pd.DataFrame) -> pd.DataFrame:
    """For each of :data:`KNOWN_RELATIONS`: in how many runs the important set contains its
    inputs, and in how many it is exactly that set."""
    sets = [frozenset(v) for v in runs["variables"]]
    return pd.DataFrame([
        {"relation": name, "variables": _names(variables), "runs_containing": sum(variables <= s for s in sets),
         "runs_exact": sum(variables == s for s in sets), "n_runs": len(sets)}
        for name, variables in KNOWN_RELATIONS.items()
    ])


# ---------------------------------------------------------------- everything


def run_knots(config: KnotConfig = KnotConfig(), data: KnotData | None = None,
              stages: Stages | None = None) -> dict[str, pd.DataFrame]:
    """The whole knot study as tidy tables: ``models``, ``importance``, ``ablations``,
    ``formulas``, ``relations``, ``unsupervised``, ``clusters``, ``known_relations``.
    ``data`` (loaded with ``config`` when None) lets the caller inspect what was loaded;
    ``stages`` keeps the model comparison, the formula, the ablations and each unsupervised run,
    so a killed study goes on after the last one finished."""
    data = load_knot_data(config) if data is None else data
    supervised = {  # the longest first: every stage is independent of the others
        "models": lambda: model_comparison(data, config),
        "formula": lambda: kan_signature_formula(data, config)[0],
        "ablations": lambda: ablations(data, config),
    }
    (models, kan), own, ablation_table, *rows = (stages or Stages()).run_many(
        {**supervised, **unsupervised_stages(data, config)})
    runs = pd.DataFrame(rows)
    shape = "[" + ",".join(map(str, config.formula_width)) + "]"
    return {
        "models": models,
        "importance": feature_importance(kan, data),
        "ablations": ablation_table,
        "formulas": formula_table(data, {f"KAN {shape} auto": own}),
        "relations": relation_checks(pd.concat([data.fit, data.val, data.test], ignore_index=True)),
        "unsupervised": runs,
        "clusters": cluster_sets(runs, config.overlap_threshold),
        "known_relations": known_relations(runs),
    }
