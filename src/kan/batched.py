"""Training many models at once: the entry point every sweep uses.

``fit_many`` has the semantics of calling :func:`kan.train.fit` on each (model, dataset)
pair with the same config; results come back in input order.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from torch import Tensor, nn

from kan.train import FitResult, TrainConfig, fit


def fit_many(
    models: Sequence[nn.Module], datasets: Sequence[Mapping[str, Tensor]], config: TrainConfig
) -> list[FitResult]:
    """Train every model on its dataset with ``config``; models are trained in place."""
    if len(models) != len(datasets):
        raise ValueError(f"fit_many got {len(models)} models but {len(datasets)} datasets")
    return [fit(model, data, config) for model, data in zip(models, datasets)]
