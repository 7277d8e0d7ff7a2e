"""A scikit-learn style estimator around the paper's workflow: ``fit`` sparsifies, prunes and
refines a KAN; ``auto_symbolic`` and ``formula`` snap it and export the formula.

It follows scikit-learn's conventions (constructor arguments are the parameters, ``fit`` returns
the estimator, fitted state ends in ``_``, ``score`` is R²) without depending on scikit-learn.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np
import sympy
import torch

from kan.layers import resolve_dtype
from kan.models import KAN
from kan.prune import prune
from kan.symbolic import auto_symbolic, symbolic_formula
from kan.train import TrainConfig, fit


@dataclass
class KANRegressor:
    """Sparsify → prune → refine on ``fit(X, y)``, in the paper's terms: a KAN
    ``[n_in, *hidden, n_out]`` with G = ``grid`` intervals of order k = ``order`` trains
    ``sparsify_steps`` with penalty λ = ``lamb`` (μ₁ = ``lamb_l1``, μ₂ = ``lamb_entropy``), hidden
    nodes below θ = ``prune_threshold`` are pruned, and the smaller KAN trains ``refine_steps`` per G
    of ``refine_grids``. Each input's grid spans its own column's samples, so columns need no
    common scale. ``seed`` seeds the model's own generator."""

    hidden: Sequence[int] = (5,)
    grid: int = 5
    order: int = 3
    lamb: float = 0.01
    lamb_l1: float = 1.0
    lamb_entropy: float = 10.0
    prune_threshold: float = 1e-2
    sparsify_steps: int = 20
    refine_steps: int = 50
    refine_grids: tuple[int, ...] = (10, 20)
    seed: int = 0
    dtype: str = "float64"

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, the objects themselves (scikit-learn's ``get_params``; its
        ``clone`` checks identity)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's description of the estimator (a regressor that needs a target), which its
        own tools (cross_val_score, Pipeline, clone) ask for; imported only then."""
        from sklearn.utils import RegressorTags, Tags, TargetTags  # deferred: optional, slow to import

        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True), regressor_tags=RegressorTags())

    def set_params(self, **params: Any) -> "KANRegressor":
        """Change constructor arguments; an unknown name is a ValueError naming it."""
        unknown = sorted(set(params) - set(self.get_params()))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; valid: {sorted(self.get_params())}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _tensors(self, X: Any, y: Any | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = torch.as_tensor(np.asarray(X, dtype=np.float64), dtype=resolve_dtype(self.dtype))
        if x.dim() != 2:
            raise ValueError(f"X must be 2-d [n_samples, n_features], got shape {list(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("X contains NaN or Inf values")
        if y is None:
            return x, None
        labels = torch.as_tensor(np.asarray(y, dtype=np.float64), dtype=x.dtype)
        if not bool(torch.isfinite(labels).all()):
            raise ValueError("y contains NaN or Inf values")
        labels = labels[:, None] if labels.dim() == 1 else labels
        if labels.dim() != 2 or len(labels) != len(x):
            raise ValueError(f"y must be [n_samples] or [n_samples, n_outputs] with {len(x)} rows, "
                             f"got {list(labels.shape)}")
        return x, labels

    def fit(self, X: Any, y: Any) -> "KANRegressor":
        """Train on ``(X, y)``: sparsify, prune, refine; the KAN is ``model_``."""
        x, labels = self._tensors(X, y)
        self.dataset_ = {"train_input": x, "train_label": labels, "test_input": x, "test_label": labels}
        constant = (x.amin(0) == x.amax(0)).nonzero().flatten().tolist()
        if constant:
            raise ValueError(f"column(s) {constant} of X hold one value each (column {constant[0]}: every value is "
                             f"{float(x[0, constant[0]])}): a KAN needs inputs that vary; drop them")
        width = [x.shape[1], *self.hidden, labels.shape[1]]
        model = KAN(width, self.grid, self.order, seed=self.seed, dtype=self.dtype)
        model.update_grid(x)  # every input's knots span its own column's samples
        fit(model, self.dataset_, TrainConfig(steps=self.sparsify_steps, lamb=self.lamb, lamb_l1=self.lamb_l1,
                                              lamb_entropy=self.lamb_entropy))
        with warnings.catch_warnings():  # a hidden layer where no node passes keeps its strongest node
            warnings.simplefilter("ignore", RuntimeWarning)
            model = prune(model, x, self.prune_threshold)
        fit(model, self.dataset_, TrainConfig(steps=self.refine_steps, grid_schedule=tuple(self.refine_grids)))
        self.model_ = model
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``[n_samples]`` (one output) or ``[n_samples, n_outputs]``."""
        self._fitted()
        x, _ = self._tensors(X)
        with torch.no_grad():
            out = self.model_(x).numpy()
        return out[:, 0] if out.shape[1] == 1 else out

    def score(self, X: Any, y: Any) -> float:
        """R² of the predictions (averaged over outputs)."""
        prediction = self.predict(X).reshape(len(X), -1)
        truth = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
        residual = ((truth - prediction) ** 2).sum(axis=0)
        total = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1 - residual / total))

    def _fitted(self) -> None:
        """A RuntimeError unless ``fit`` has run."""
        if not hasattr(self, "model_"):
            raise RuntimeError("this KANRegressor is not fitted yet: call fit(X, y) first")

    def auto_symbolic(self, library: Sequence[str] | None = None) -> "KANRegressor":
        """Snap the fitted KAN layer by layer (:func:`kan.symbolic.auto_symbolic` on the training data)."""
        self._fitted()
        auto_symbolic(self.model_, self.dataset_, library=library)
        return self

    def formula(self, variables: Sequence[str] | None = None) -> list[sympy.Expr]:
        """The snapped KAN's normalised formulas, one per output (:func:`kan.symbolic.symbolic_formula`)."""
        self._fitted()
        return symbolic_formula(self.model_, variables)
