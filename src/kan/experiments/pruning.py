"""The "pruned" variant of a KAN sweep, as this pipeline defines it.

1. *Sparsify*: train the full-width KAN for one phase (``steps`` optimizer steps) on the
   schedule's first grid G₁ with the penalty ``λ(μ₁ Σ|Φ|₁ + μ₂ Σ S(Φ))``.
2. *Prune*: keep hidden nodes whose strongest incoming and outgoing ``|φ|₁`` on the
   training inputs both exceed ``threshold`` (paper: θ = 1e-2); a layer never loses all of
   its nodes (:func:`kan.prune.kept_nodes`).
3. *Retrain*: the smaller KAN goes through the whole grid schedule G₁, G₂, … without the
   penalty, recording one run per phase, exactly like the unpruned variant.

The paper gives λ ∈ {1e-2, 1e-3} but not the length of the sparsification phase or whether
the penalty stays on after pruning; both choices above are ours and are recorded in every
run's config (``prune``) and in the report's deviations.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor

from kan.models import KAN
from kan.prune import prune
from kan.train import TrainConfig

DEVIATION = (
    "pruned KANs: one sparsification phase (steps at the first grid, penalty λ) then node "
    "pruning at θ, then the full grid schedule without penalty (paper silent on these details)"
)


def sparsify_config(train: Mapping[str, Any], lamb: float) -> TrainConfig:
    """Training options of the sparsification phase: the first grid only, with penalty ``lamb``."""
    return TrainConfig.from_dict({**train, "grid_schedule": list(train["grid_schedule"][:1]), "lamb": lamb})


def prune_model(model: KAN, inputs: Tensor, threshold: float) -> KAN:
    """The smaller KAN kept by node pruning at ``threshold`` on ``inputs``."""
    return prune(model, inputs, node_threshold=threshold)
