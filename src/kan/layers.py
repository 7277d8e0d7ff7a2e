"""The KAN layer: one learnable activation per edge, φ(x) = w_b·b(x) + w_s·spline(x).

Shapes: input ``[batch, in]``, output ``[batch, out]``; per-edge tensors are ``[in, out]``;
spline coefficients ``[in, out, G + k]``. A pruned edge has ``mask = 0``; an edge fixed to a
symbolic function ``c·f(a·x + b) + d`` has ``symbolic_mask = 1`` and skips its numeric branch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kan import spline
from kan.symbolic_library import get_function

BASE_ACTIVATIONS = {"silu": F.silu, "identity": lambda x: x, "zero": torch.zeros_like}


def check_input(x: Tensor, width: int, owner: str) -> None:
    """Raise a clear error unless ``x`` is a finite-shape ``[batch, width]`` tensor."""
    if x.dim() != 2 or x.shape[1] != width:
        raise ValueError(f"{owner} expects input of shape [batch, {width}], got {list(x.shape)}")


class KANLayer(nn.Module):
    """A fully connected KAN layer from ``in_dim`` to ``out_dim`` nodes."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_intervals: int = 5,
        order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        noise_scale: float = 0.1,
        base_activation: str = "silu",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"layer dimensions must be >= 1, got in_dim={in_dim}, out_dim={out_dim}")
        if base_activation not in BASE_ACTIVATIONS:
            raise ValueError(f"unknown base activation {base_activation!r}; known: {', '.join(BASE_ACTIVATIONS)}")
        spline.check_grid_size(num_intervals, order)
        low, high = grid_range
        if not low < high:
            raise ValueError(f"grid_range must satisfy low < high, got {grid_range}")
        self.in_dim, self.out_dim, self.order = in_dim, out_dim, order
        self.base_activation = base_activation
        self.uniform = True
        self.symbolic_names: dict[tuple[int, int], str] = {}
        grid = spline.uniform_grid(
            torch.full((in_dim,), float(low), dtype=dtype), torch.full((in_dim,), float(high), dtype=dtype),
            num_intervals, order,
        )
        self.register_buffer("grid", grid)
        self.register_buffer("mask", torch.ones(in_dim, out_dim, dtype=dtype))
        self.register_buffer("symbolic_mask", torch.zeros(in_dim, out_dim, dtype=dtype))
        shape = (in_dim, out_dim, num_intervals + order)
        self.coef = nn.Parameter(noise_scale * torch.randn(shape, generator=generator, dtype=dtype))
        bound = math.sqrt(6.0 / (in_dim + out_dim))  # Xavier-uniform, as in the paper
        base = (torch.rand(in_dim, out_dim, generator=generator, dtype=dtype) * 2 - 1) * bound
        self.scale_base = nn.Parameter(base)
        self.scale_spline = nn.Parameter(torch.ones(in_dim, out_dim, dtype=dtype))
        affine = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=dtype).repeat(in_dim, out_dim, 1)
        self.symbolic_affine = nn.Parameter(affine)  # [in, out, 4] = (a, b, c, d)

    @property
    def num_intervals(self) -> int:
        """G, the number of grid intervals."""
        return self.grid.shape[1] - 2 * self.order - 1

    def basis(self, x: Tensor) -> Tensor:
        """Spline basis of ``x``: ``[batch, in, G + 3k]`` (uniform, padded) or ``[batch, in, G + k]``."""
        if self.uniform:
            return spline.uniform_bspline_basis_padded(x, self.grid, self.order)
        return spline.bspline_basis(x, self.grid, self.order)

    def _basis_coef(self) -> Tensor:
        """Coefficients matching :meth:`basis` columns: zero-padded on the uniform path."""
        return F.pad(self.coef, (self.order, self.order)) if self.uniform else self.coef

    def _numeric_mask(self) -> Tensor:
        return self.mask * (1 - self.symbolic_mask)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.in_dim, "KANLayer")
        numeric = self._numeric_mask()
        basis = self.basis(x).reshape(x.shape[0], -1)  # [batch, in * nb]
        coef = self._basis_coef() * (self.scale_spline * numeric).unsqueeze(-1)  # [in, out, nb]
        weight = coef.transpose(1, 2).reshape(-1, self.out_dim)  # [in * nb, out]
        base = BASE_ACTIVATIONS[self.base_activation](x)
        out = torch.addmm(base @ (self.scale_base * numeric), basis, weight)
        if self.symbolic_names:
            values, _, outputs = self._symbolic_edge_values(x)
            out = out.index_add(1, outputs, values)
        return out

    def edge_activations(self, x: Tensor) -> Tensor:
        """Every edge's φ at every sample, ``[batch, in, out]``; summing over ``in`` gives forward."""
        check_input(x, self.in_dim, "KANLayer")
        spline_part = torch.einsum("bin,ion->bio", self.basis(x), self._basis_coef())
        base = BASE_ACTIVATIONS[self.base_activation](x).unsqueeze(-1)
        phi = (base * self.scale_base + spline_part * self.scale_spline) * self._numeric_mask()
        if self.symbolic_names:
            values, inputs, outputs = self._symbolic_edge_values(x)
            phi[:, inputs, outputs] = values  # these edges' numeric branch is masked to zero
        return phi

    def _symbolic_edge_values(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``c·f(a·x_i + b) + d`` for every symbolic edge: values ``[batch, E]`` and edge indices."""
        edges = sorted(self.symbolic_names)
        inputs = torch.tensor([i for i, _ in edges], device=x.device)
        outputs = torch.tensor([j for _, j in edges], device=x.device)
        a, b, c, d = self.symbolic_affine[inputs, outputs].unbind(-1)
        pre = a * x[:, inputs] + b
        columns = [get_function(self.symbolic_names[e]).torch_fn(pre[:, n]) for n, e in enumerate(edges)]
        values = (c * torch.stack(columns, dim=1) + d) * self.mask[inputs, outputs]
        return values, inputs, outputs

    def set_symbolic(self, i: int, j: int, name: str, affine: tuple[float, float, float, float]) -> None:
        """Fix edge (i, j) to ``c·f(a·x + b) + d`` with ``affine = (a, b, c, d)``."""
        get_function(name)
        self._check_edge(i, j)
        with torch.no_grad():
            self.symbolic_affine[i, j] = torch.tensor(affine, dtype=self.symbolic_affine.dtype)
            self.symbolic_mask[i, j] = 1.0
        self.symbolic_names[(i, j)] = name

    def clear_symbolic(self, i: int, j: int) -> None:
        """Return edge (i, j) to its numeric spline."""
        self._check_edge(i, j)
        self.symbolic_names.pop((i, j), None)
        self.symbolic_mask[i, j] = 0.0

    def _check_edge(self, i: int, j: int) -> None:
        if not (0 <= i < self.in_dim and 0 <= j < self.out_dim):
            raise IndexError(f"edge ({i}, {j}) outside layer of shape [{self.in_dim}, {self.out_dim}]")

    def spline_values(self, x: Tensor) -> Tensor:
        """The bare splines ``Σ c B(x)`` per edge, ``[batch, in, out]`` (no scales, no masks)."""
        return torch.einsum("bin,ion->bio", self.basis(x), self._basis_coef())

    @torch.no_grad()
    def update_grid(self, x: Tensor, num_intervals: int | None = None, uniform_fraction: float = 1.0) -> None:
        """Move the knots to follow the samples ``x`` and refit the splines to stay the same function.

        ``uniform_fraction = 1`` keeps per-input uniform grids (fast path); smaller values mix in
        sample percentiles (paper's grid_eps) and switch to the general Cox-de Boor path.
        """
        check_input(x, self.in_dim, "KANLayer.update_grid")
        size = self.num_intervals if num_intervals is None else num_intervals
        new_grid = spline.adaptive_grid(x, size, self.order, uniform_fraction)
        self._refit(new_grid, torch.cat([x, self._grid_samples(new_grid)]), uniform=uniform_fraction == 1.0)

    @torch.no_grad()
    def extend_grid(self, num_intervals: int) -> None:
        """Least-squares refit onto a uniform grid with ``num_intervals`` on the same range."""
        k = self.order
        new_grid = spline.uniform_grid(self.grid[:, k], self.grid[:, -k - 1], num_intervals, k)
        self._refit(new_grid, self._grid_samples(new_grid), uniform=True)

    def _grid_samples(self, grid: Tensor) -> Tensor:
        """Evenly spaced points over each input's grid range, ``[3(G + k) + 1, in]``."""
        k = self.order
        count = 3 * (grid.shape[1] - k - 1) + 1
        t = torch.linspace(0, 1, count, dtype=grid.dtype, device=grid.device)[:, None]
        low, high = grid[:, k], grid[:, -k - 1]
        return low + t * (high - low)

    def _refit(self, new_grid: Tensor, samples: Tensor, uniform: bool) -> None:
        target = self.spline_values(samples)
        coef = spline.fit_coefficients(samples, target, new_grid, self.order)
        self.grid = new_grid
        self.uniform = uniform
        if coef.shape == self.coef.shape:
            self.coef.data = coef  # same parameter object: an optimizer keeps tracking it
        else:
            self.coef = nn.Parameter(coef)

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "uniform": self.uniform,
            "symbolic_names": [[i, j, name] for (i, j), name in sorted(self.symbolic_names.items())],
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.uniform = bool(state["uniform"])
        self.symbolic_names = {(int(i), int(j)): str(name) for i, j, name in state["symbolic_names"]}
