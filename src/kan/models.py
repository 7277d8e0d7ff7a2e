"""Models with one interface: the KAN (a stack of KAN layers) and its MLP baseline.

Both take ``[batch, width[0]]`` and return ``[batch, width[-1]]``, are built reproducibly from
a seed without touching the global RNG, count their parameters, and save/load exactly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from kan import spline
from kan.layers import KANLayer, check_input, check_samples, dtype_name, fused_layers_forward, resolve_dtype


def _check_width(width: Sequence[int]) -> list[int]:
    if isinstance(width, (str, bytes)) or not all(spline.is_whole(w) for w in width):
        raise ValueError(f"width must list integer layer sizes, got {list(width) if not isinstance(width, str) else width!r}")
    width = [int(w) for w in width]
    if len(width) < 2 or any(w < 1 for w in width):
        raise ValueError(f"width must list >= 2 positive layer sizes, got {width}")
    return width


class _SavableModel(nn.Module):
    """Save/load through a config (constructor arguments) plus the state dict."""

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        """Write config and state to ``path`` (``torch.save`` format)."""
        torch.save({"kind": type(self).__name__, "config": self.config(), "state": self.state_dict()}, path)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class KAN(_SavableModel):
    """Kolmogorov-Arnold Network of shape ``width = [n0, ..., nL]``."""

    def __init__(
        self,
        width: Sequence[int],
        num_intervals: int = 3,
        order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        noise_scale: float = 0.1,
        base_activation: str = "silu",
        seed: int = 0,
        dtype: torch.dtype | str = torch.float32,
    ) -> None:
        super().__init__()
        dtype = resolve_dtype(dtype)
        if not spline.is_whole(seed):
            raise ValueError(f"seed must be a whole number, got {seed!r}")
        self._init_args = {
            "num_intervals": int(num_intervals), "order": int(order), "grid_range": tuple(grid_range),
            "noise_scale": float(noise_scale), "base_activation": base_activation, "seed": int(seed),
            "dtype": dtype_name(dtype),
        }
        generator = torch.Generator().manual_seed(int(seed))
        width = _check_width(width)
        self.layers = nn.ModuleList(
            KANLayer(n_in, n_out, num_intervals, order, grid_range, noise_scale, base_activation, generator, dtype)
            for n_in, n_out in zip(width[:-1], width[1:])
        )

    @property
    def width(self) -> list[int]:
        return [self.layers[0].in_dim] + [layer.out_dim for layer in self.layers]

    @property
    def num_intervals(self) -> int:
        return self.layers[0].num_intervals

    def config(self) -> dict[str, Any]:
        """The arguments that rebuild this model's structure, with its current dtype (after a
        ``.double()`` or ``.float()`` too) and grid size."""
        return {"width": self.width, **self._init_args, "num_intervals": self.num_intervals,
                "dtype": dtype_name(self.layers[0].coef.dtype)}

    def forward(self, x: Tensor) -> Tensor:
        layers = self.layers
        check_input(x, layers[0].in_dim, "KAN", layers[0].coef.dtype)
        # one autograd node for the whole model; torch.compile traces each layer's operator instead
        if not torch.compiler.is_compiling() and all(layer.fusable for layer in layers):
            return fused_layers_forward(layers, x)
        for layer in layers:
            x = layer(x)
        return x

    def forget_inputs(self) -> None:
        """Drop what the layers derive from their last inputs and their own tensors
        (:meth:`KANLayer.forget_inputs`)."""
        for layer in self.layers:
            layer.forget_inputs()

    def layer_inputs(self, x: Tensor) -> list[Tensor]:
        """The input of every layer followed by the output: ``L + 1`` tensors."""
        check_samples(x, self.width[0], "KAN.layer_inputs", self.dtype)
        values = [x]
        for layer in self.layers:
            values.append(layer(values[-1]))
        return values

    def forward_with_edges(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Output plus every layer's edge activations ``[batch, in, out]`` in one pass."""
        check_input(x, self.width[0], "KAN", self.dtype)
        edges = []
        for layer in self.layers:
            phi = layer.edge_activations(x)
            edges.append(phi)
            x = phi.sum(dim=1)
        return x, edges

    def edge_scores(self, x: Tensor) -> list[Tensor]:
        """The paper's L1 norm of every activation, ``mean_s |φ(x_s)|``, per layer ``[in, out]``."""
        check_samples(x, self.width[0], "KAN.edge_scores", self.dtype)
        with torch.no_grad():
            return [phi.abs().mean(dim=0) for phi in self.forward_with_edges(x)[1]]

    def forward_with_penalty(self, x: Tensor, l1_weight: float = 1.0, entropy_weight: float = 1.0) -> tuple[Tensor, Tensor]:
        """Output and the sparsification penalty ``Σ_l μ1 |Φ_l|_1 + μ2 S(Φ_l)`` (paper eq. 2.20)."""
        out, edges = self.forward_with_edges(x)
        penalty = x.new_zeros(())
        for phi in edges:
            l1 = phi.abs().mean(dim=0)  # [in, out]
            total = l1.sum()
            share = l1 / (total + 1e-12)
            entropy = -(share * torch.log(share + 1e-12)).sum()
            penalty = penalty + l1_weight * total + entropy_weight * entropy
        return out, penalty

    def num_parameters(self) -> int:
        """Trainable scalars on live edges: G + k coefficients, w_b and w_s per numeric edge, 4 per symbolic edge."""
        total = 0
        for layer in self.layers:
            live = layer.mask.bool()
            symbolic = layer.symbolic_mask.bool() & live
            per_edge = layer.coef.shape[-1] + 2
            total += int((live & ~symbolic).sum()) * per_edge + int(symbolic.sum()) * 4
        return total

    @torch.no_grad()
    def update_grid(self, x: Tensor, num_intervals: int | None = None, uniform_fraction: float = 1.0) -> None:
        """Grid update (and optional resize) of every layer from the activations of ``x``."""
        check_samples(x, self.width[0], "KAN.update_grid", self.dtype)
        for layer in self.layers:
            layer.update_grid(x, num_intervals, uniform_fraction)
            x = layer(x)

    @torch.no_grad()
    def extend_grid(self, num_intervals: int) -> None:
        """Grid extension of every layer to ``num_intervals`` on its current range."""
        for layer in self.layers:
            layer.extend_grid(num_intervals)


MLP_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid}


class MLP(_SavableModel):
    """Fully connected baseline of shape ``width`` with one activation between layers."""

    def __init__(
        self, width: Sequence[int], activation: str = "silu", seed: int = 0, dtype: torch.dtype | str = torch.float32
    ) -> None:
        super().__init__()
        dtype = resolve_dtype(dtype)
        if activation not in MLP_ACTIVATIONS:
            raise ValueError(f"unknown MLP activation {activation!r}; known: {', '.join(MLP_ACTIVATIONS)}")
        width = _check_width(width)
        self._init_args = {"width": width, "activation": activation, "seed": int(seed), "dtype": dtype_name(dtype)}
        generator = torch.Generator().manual_seed(int(seed))
        modules: list[nn.Module] = []
        for n_in, n_out in zip(width[:-1], width[1:]):
            linear = nn.utils.skip_init(nn.Linear, n_in, n_out, dtype=dtype)
            bound = 1 / math.sqrt(n_in)  # PyTorch's default init, drawn from our own generator
            with torch.no_grad():
                linear.weight.copy_((torch.rand(n_out, n_in, generator=generator, dtype=dtype) * 2 - 1) * bound)
                linear.bias.copy_((torch.rand(n_out, generator=generator, dtype=dtype) * 2 - 1) * bound)
            modules += [linear, MLP_ACTIVATIONS[activation]()]
        self.net = nn.Sequential(*modules[:-1])

    @property
    def width(self) -> list[int]:
        return list(self._init_args["width"])

    def config(self) -> dict[str, Any]:
        """The arguments that rebuild this model, with its current dtype."""
        return {**self._init_args, "dtype": dtype_name(self.net[0].weight.dtype)}

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.width[0], "MLP", self.net[0].weight.dtype)
        return self.net(x)

    def num_parameters(self) -> int:
        """All weights and biases."""
        return sum(p.numel() for p in self.parameters())


_MODEL_KINDS: dict[str, type[_SavableModel]] = {"KAN": KAN, "MLP": MLP}


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> KAN | MLP:
    """Rebuild a model saved with ``model.save(path)``; outputs match the saved model exactly."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    kind = payload.get("kind")
    if kind not in _MODEL_KINDS:
        raise ValueError(f"{path}: unknown model kind {kind!r}")
    model = _MODEL_KINDS[kind](**payload["config"])
    model.load_state_dict(payload["state"])
    return model.to(map_location)
