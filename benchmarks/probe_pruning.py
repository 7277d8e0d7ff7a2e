"""Why the pruned variant keeps one first-layer node on Feynman I.6.20 (the function needs two).

I.6.20 is exp(-θ²/(2σ²))/√(2πσ²): its exponent multiplies θ² by 1/σ², which a single hidden node
Φ(φ₁(θ) + φ₂(σ)) cannot represent, so [2,1,1] underfits and the paper's pruned shape is [2,2,1].
This probe runs the pipeline's sparsification phase (one phase at G = 3 with penalty λ) on a
[2,5,1] KAN for several budgets, λ and seeds, and prints per run: the hidden nodes' pruning scores
(min of strongest incoming and outgoing |φ|₁; kept when > θ = 1e-2), how many pass, the data MSE,
and the penalty's parts (λ·Σ|φ|₁ and λ·entropy, summed over layers). It also fits [2,1,1] and
[2,2,1] KANs without penalty, so the data-loss gain of a second node can be set against what the
penalty charges for it (its entropy term alone grows by up to λ·ln 2 when a second node takes
half of a layer's |φ|₁).

Run: ``.venv/bin/python benchmarks/probe_pruning.py``. 1 thread, about 3 minutes.
"""

from __future__ import annotations

import torch

from bench_sweep import feynman_data
from kan import KAN
from kan.prune import node_scores
from kan.train import TrainConfig, evaluate, fit

THRESHOLD = 1e-2


def penalty_parts(model: KAN, x: torch.Tensor) -> tuple[float, float]:
    """(Σ_l Σ|φ|₁, Σ_l entropy) of the model's activations on ``x``."""
    with torch.no_grad():
        _, edges = model.forward_with_edges(x)
    l1_total, entropy_total = 0.0, 0.0
    for phi in edges:
        l1 = phi.abs().mean(dim=0)
        share = l1 / (l1.sum() + 1e-12)
        l1_total += float(l1.sum())
        entropy_total += float(-(share * torch.log(share + 1e-12)).sum())
    return l1_total, entropy_total


def main() -> None:
    torch.set_num_threads(1)
    data = feynman_data("I.6.20")
    x = data["train_input"]
    print("data MSE without penalty, 200 steps at G = 3 then 200 at G = 10:")
    for shape in ([2, 1, 1], [2, 2, 1]):
        model = KAN(shape, num_intervals=3, seed=0, dtype=torch.float64)
        fit(model, data, TrainConfig(steps=200, grid_schedule=(3, 10)))
        print(f"  {shape}: train MSE {evaluate(model, x, data['train_label'], 'mse')['loss']:.2e}")
    print("\nsparsification phase of the pruned variant ([2,5,1], G = 3):")
    for steps in (30, 200):
        for lamb in (1e-2, 1e-3):
            for seed in (0, 1, 2):
                model = KAN([2, 5, 1], num_intervals=3, seed=seed, dtype=torch.float64)
                fit(model, data, TrainConfig(steps=steps, grid_schedule=(3,), lamb=lamb))
                scores = node_scores(model, x)[0]
                mse = evaluate(model, x, data["train_label"], "mse")["loss"]
                l1, entropy = penalty_parts(model, x)
                print(f"  {steps:3d} steps, λ = {lamb:g}, seed {seed}: scores "
                      f"[{', '.join(f'{s:.1e}' for s in scores.tolist())}] -> {int((scores > THRESHOLD).sum())} kept; "
                      f"MSE {mse:.1e}, λ·Σ|φ|₁ {lamb * l1:.1e}, λ·entropy {lamb * entropy:.1e}", flush=True)


if __name__ == "__main__":
    main()
