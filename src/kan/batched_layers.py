"""M same-shape models as one batched tensor program.

A stack holds every model's trainable parameters as one row of ``params [M, n]`` (the order of
``model.parameters()``, minus parameters the forward never uses) plus the buffers the forward
needs. Shapes carry the model axis first: inputs ``[M, B, in]``, outputs ``[M, B, out]``, per-edge
tensors ``[M, in, out]``, spline coefficients ``[M, in, out, G + k]``, grids ``[M, in, G + 2k + 1]``.
The forward takes the parameters as an argument so an optimizer can evaluate trial points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from kan import spline
from kan.layers import BASE_ACTIVATIONS, STACKED_DENSE_MAX_WIDTH
from kan.models import KAN, MLP

# Grid refits build a [samples, models·in, G + k] basis; chunk the model axis to stay below this.
_REFIT_ELEMENTS = 1 << 23


def _stack_rows(tensors: Sequence[Sequence[Tensor]]) -> Tensor:
    """One row per model: ``tensors[m]`` flattened and concatenated, ``[M, n]``."""
    return torch.stack([torch.cat([t.detach().reshape(-1) for t in row]) for row in tensors])


def _write(target: Tensor, value: Tensor) -> None:
    with torch.no_grad():
        target.copy_(value)


@dataclass(frozen=True)
class _KANLayerSlot:
    """Where one KAN layer's coef, scale_base and scale_spline sit in a params row."""

    in_dim: int
    out_dim: int
    num_basis: int  # G + k
    offset: int

    @property
    def size(self) -> int:
        return self.in_dim * self.out_dim * (self.num_basis + 2)

    def views(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``coef [M, in, out, G + k]``, ``scale_base [M, in, out]``, ``scale_spline [M, in, out]``."""
        m, edges = params.shape[0], self.in_dim * self.out_dim
        block = params[:, self.offset : self.offset + self.size]
        coef = block[:, : edges * self.num_basis].view(m, self.in_dim, self.out_dim, self.num_basis)
        rest = block[:, edges * self.num_basis :].view(m, 2, self.in_dim, self.out_dim)
        return coef, rest[:, 0], rest[:, 1]


def _local_values(x: Tensor, grid: Tensor, order: int, slopes: bool) -> tuple[Tensor, Tensor | None, Tensor]:
    """:func:`spline.local_basis` of ``x [M, in, B]`` on uniform grids ``[M, in, knots]``: the values
    ``[M, k+1, in, B]``, optionally their derivatives d/dx (same shape) and the values' padded
    columns (:func:`spline.local_columns`)."""
    start, step = spline.uniform_spacing(grid)
    values, d_du, floor = spline.local_basis((x - start) / step, order, slopes)
    cell = spline.padded_cell(floor, grid.shape[-1] - order - 1, order)
    return values, None if d_du is None else d_du / step.unsqueeze(1), spline.local_columns(cell, order)


class _LocalValues(torch.autograd.Function):
    """:func:`_local_values` as an op differentiable in x (first derivatives); the columns have no gradient."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, grid: Tensor, order: int) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        values, slopes, columns = _local_values(x, grid, order, ctx.needs_input_grad[0])
        ctx.save_for_backward(slopes)
        ctx.mark_non_differentiable(columns)
        return values, columns

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_values: Tensor, _: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        (slopes,) = ctx.saved_tensors
        return (grad_values * slopes).sum(dim=1), None, None


class _StackedLayer(torch.autograd.Function):
    """Spline + base branch of M stacked uniform-grid KAN layers, features first:
    ``x [M, in, B] → [M, out, B]`` (every matmul then has the long sample axis as its columns).

    The forward contracts the k+1 local basis values per sample and input with the padded,
    scaled coefficients ``[M, out, in·width]``, through a dense basis ``[M, in·width, B]`` on
    narrow grids or through gathers on wide ones; the hand-written backward gives the gradients
    of x, coef, scale_base and scale_spline with a few large ops (first derivatives only).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor, mask: Tensor | None,
        grid: Tensor, order: int, activation: str,
    ) -> Tensor:
        m, n_in, batch = x.shape
        n_out, num_basis = coef.shape[2], coef.shape[3]
        width = spline.padded_width(num_basis, order)
        values, slopes, columns = _local_values(x, grid, order, ctx.needs_input_grad[0])
        index = columns + (torch.arange(n_in, device=x.device) * width)[:, None]
        index, values = index.view(m, -1, batch), values.reshape(m, -1, batch)  # [M, (k+1)·in, B]
        spline_scale = scale_spline if mask is None else scale_spline * mask
        weight = x.new_zeros(m, n_out, n_in, width)
        weight[..., spline.function_columns(num_basis, order)] = (coef * spline_scale.unsqueeze(-1)).transpose(1, 2)
        weight = weight.view(m, n_out, n_in * width)
        basis = gathered = None
        if width <= STACKED_DENSE_MAX_WIDTH:
            basis = x.new_zeros(m, n_in * width, batch).scatter_(1, index, values)
            out = torch.bmm(weight, basis)
        else:
            gathered = torch.gather(weight, 2, index.view(m, 1, -1).expand(m, n_out, -1)).view(m, n_out, -1, batch)
            out = (gathered * values.unsqueeze(1)).sum(dim=2)
        activated = base_weight = None
        if activation != "zero":
            activated = BASE_ACTIVATIONS[activation](x)
            base_weight = scale_base if mask is None else scale_base * mask
            out = torch.baddbmm(out, base_weight.transpose(1, 2), activated)
        ctx.meta = (order, activation, width)
        ctx.save_for_backward(
            x, coef, mask, values, slopes, index, basis, gathered, weight, spline_scale, activated, base_weight
        )
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, coef, mask, values, slopes, index, basis, gathered, weight, spline_scale, activated, base_weight = ctx.saved_tensors
        k, activation, width = ctx.meta
        m, n_in, batch = x.shape
        n_out, num_basis = coef.shape[2], coef.shape[3]
        grad_out = grad_out.contiguous()
        grad_x = grad_coef = grad_base = grad_spline = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[3]:
            if basis is not None:
                grad_weight = torch.bmm(grad_out, basis.transpose(1, 2))  # [M, out, in·width]
            else:
                spread = (values.unsqueeze(1) * grad_out.unsqueeze(2)).view(m, n_out, -1)
                expanded = index.view(m, 1, -1).expand(m, n_out, -1)
                grad_weight = grad_out.new_zeros(m, n_out, n_in * width).scatter_add_(2, expanded, spread)
            core = grad_weight.view(m, n_out, n_in, width)[..., spline.function_columns(num_basis, k)].transpose(1, 2)
            grad_coef = core * spline_scale.unsqueeze(-1)
            grad_spline = torch.linalg.vecdot(core, coef)
            grad_spline = grad_spline if mask is None else grad_spline * mask
        if activated is not None and ctx.needs_input_grad[2]:
            grad_base = torch.bmm(activated, grad_out.transpose(1, 2))
            grad_base = grad_base if mask is None else grad_base * mask
        if ctx.needs_input_grad[0]:
            if basis is not None:
                per_value = torch.gather(torch.bmm(weight.transpose(1, 2), grad_out), 1, index)
            else:
                per_value = (gathered * grad_out.unsqueeze(2)).sum(dim=1)
            grad_x = (per_value.view_as(slopes) * slopes).sum(dim=1)
            if activated is not None:
                through_base = torch.bmm(base_weight, grad_out)
                if activation == "silu":
                    through_base = torch.ops.aten.silu_backward(through_base, x)
                grad_x = grad_x + through_base
        return grad_x, grad_coef, grad_base, grad_spline, None, None, None, None


class StackedKAN:
    """M uniform-grid KANs of one shape, order, G and base activation, without symbolic edges."""

    def __init__(self, models: Sequence[KAN]) -> None:
        first = models[0]
        self.width = first.width
        self.order = first.layers[0].order
        self.activation_name = first.layers[0].base_activation
        self.grids = [torch.stack([m.layers[i].grid for m in models]) for i in range(len(first.layers))]
        masks = [torch.stack([m.layers[i].mask for m in models]) for i in range(len(first.layers))]
        self.masks: list[Tensor | None] = [None if bool((mask == 1).all()) else mask for mask in masks]
        self.slots = self._layout(self.num_intervals)
        self.params = _stack_rows(
            [[t for layer in m.layers for t in (layer.coef, layer.scale_base, layer.scale_spline)] for m in models]
        )

    @property
    def num_intervals(self) -> int:
        return self.grids[0].shape[-1] - 2 * self.order - 1

    @property
    def num_models(self) -> int:
        return self.params.shape[0]

    def _layout(self, num_intervals: int) -> list[_KANLayerSlot]:
        slots, offset = [], 0
        for n_in, n_out in zip(self.width[:-1], self.width[1:]):
            slots.append(_KANLayerSlot(n_in, n_out, num_intervals + self.order, offset))
            offset += slots[-1].size
        return slots

    def select(self, index: Tensor) -> None:
        """Keep only the models ``index`` (int64 ``[M']``) of the stack, in that order."""
        self.params = self.params[index]
        self.grids = [g[index] for g in self.grids]
        self.masks = [None if m is None else m[index] for m in self.masks]

    def write_back(self, models: Sequence[KAN], rows: Sequence[int]) -> None:
        """Copy stack rows ``rows`` into ``models`` (grids, coefficients, scales)."""
        for model, row in zip(models, rows):
            for layer, slot, grid in zip(model.layers, self.slots, self.grids):
                coef, scale_base, scale_spline = (v[row] for v in slot.views(self.params))
                layer.grid = grid[row].clone()
                if layer.coef.shape == coef.shape:
                    _write(layer.coef, coef)
                else:
                    layer.coef = nn.Parameter(coef.clone())
                _write(layer.scale_base, scale_base)
                _write(layer.scale_spline, scale_spline)

    def forward(self, params: Tensor, x: Tensor, with_penalty: bool = False, l1_weight: float = 1.0,
                entropy_weight: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """Outputs ``[M, B, out]`` of ``x [M, B, in]`` and, if asked, the per-model penalty ``[M]``
        ``Σ_l μ1 |Φ_l|_1 + μ2 S(Φ_l)`` (paper eq. 2.20, as :meth:`KAN.forward_with_penalty`)."""
        x = x.transpose(1, 2).contiguous()  # features first: [M, in, B]
        penalty = None
        for slot, grid, mask in zip(self.slots, self.grids, self.masks):
            coef, scale_base, scale_spline = slot.views(params)
            if not with_penalty:
                x = self._layer(x, grid, coef, scale_base, scale_spline, mask)
                continue
            phi = self._edges(x, grid, coef, scale_base, scale_spline, mask)  # [M, in, out, B]
            l1 = phi.abs().mean(dim=3)  # [M, in, out]
            total = l1.sum(dim=(1, 2))
            share = l1 / (total[:, None, None] + 1e-12)
            entropy = -(share * torch.log(share + 1e-12)).sum(dim=(1, 2))
            term = l1_weight * total + entropy_weight * entropy
            penalty = term if penalty is None else penalty + term
            x = phi.sum(dim=1)
        return x.transpose(1, 2), penalty

    def _layer(self, x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
               mask: Tensor | None) -> Tensor:
        """One layer, features first: ``[M, in, B] → [M, out, B]``."""
        return _StackedLayer.apply(x, coef, scale_base, scale_spline, mask, grid, self.order, self.activation_name)

    def _edges(self, x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
               mask: Tensor | None) -> Tensor:
        """Every edge's activation φ ``[M, in, out, B]`` of ``x [M, in, B]`` (masked edges are zero)."""
        m, n_in, batch = x.shape
        k, n_out = self.order, coef.shape[2]
        values, columns = _LocalValues.apply(x, grid, k)  # [M, k+1, in, B]
        index = columns.transpose(1, 2).reshape(m, n_in, 1, -1)  # [M, in, 1, (k+1)·B]
        padded = spline.pad_functions(coef, k)  # [M, in, out, width]
        rows = torch.gather(padded, 3, index.expand(m, n_in, n_out, -1)).view(m, n_in, n_out, k + 1, batch)
        spline_part = (rows * values.transpose(1, 2).unsqueeze(2)).sum(dim=3)
        base = BASE_ACTIVATIONS[self.activation_name](x).unsqueeze(2) * scale_base.unsqueeze(-1)
        phi = base + spline_part * scale_spline.unsqueeze(-1)
        return phi if mask is None else phi * mask.unsqueeze(-1)

    @torch.no_grad()
    def update_grid(self, x: Tensor, num_intervals: int | None, uniform_fraction: float = 1.0) -> None:
        """Batched :meth:`KAN.update_grid` with uniform grids: per model and layer, knots follow that
        layer's inputs ``x [M, B, in]`` and the splines are refit by least squares (per model, per input)."""
        if uniform_fraction != 1.0:
            raise ValueError("stacked KANs keep uniform grids (uniform_fraction = 1)")
        size = self.num_intervals if num_intervals is None else int(num_intervals)
        k, m, batch = self.order, self.num_models, x.shape[1]
        x = x.transpose(1, 2).contiguous()
        new_grids, blocks = [], []
        for slot, grid, mask in zip(self.slots, self.grids, self.masks):
            coef, scale_base, scale_spline = slot.views(self.params)
            per_model = (batch + 3 * (size + k) + 1) * slot.in_dim * (size + k + slot.num_basis)
            chunk = max(1, _REFIT_ELEMENTS // per_model)
            refits = [self._refit(x[lo : lo + chunk], grid[lo : lo + chunk], coef[lo : lo + chunk], size)
                      for lo in range(0, m, chunk)]
            new_grid, new_coef = torch.cat([g for g, _ in refits]), torch.cat([c for _, c in refits])
            x = self._layer(x, new_grid, new_coef, scale_base, scale_spline, mask)
            new_grids.append(new_grid)
            blocks += [new_coef, scale_base, scale_spline]
        self.grids = new_grids
        self.slots = self._layout(size)
        self.params = torch.cat([t.reshape(m, -1) for t in blocks], dim=1)

    def _refit(self, x: Tensor, grid: Tensor, coef: Tensor, size: int) -> tuple[Tensor, Tensor]:
        """New uniform grids on the sample range of ``x [m, in, B]`` and least-squares coefficients
        that keep each spline the same function (as :meth:`KANLayer.update_grid`), for a few models."""
        k = self.order
        m, n_in, batch = x.shape
        n_out, num_basis = coef.shape[2], coef.shape[3]
        columns = x.reshape(m * n_in, batch).T  # every (model, input) is one column
        new_grid = spline.adaptive_grid(columns, size, k, 1.0)
        samples = torch.cat([columns, spline.grid_samples(new_grid, k)])
        basis = spline.uniform_bspline_basis_padded(samples, grid.reshape(m * n_in, -1), k)
        target = torch.einsum("bin,ion->bio", basis, F.pad(coef.reshape(m * n_in, n_out, num_basis), (k, k)))
        new_coef = spline.fit_coefficients(samples, target, new_grid, k)
        return new_grid.view(m, n_in, -1), new_coef.view(m, n_in, n_out, -1)


class StackedMLP:
    """M MLPs of one width and activation."""

    def __init__(self, models: Sequence[MLP]) -> None:
        first = models[0]
        hidden = [module for module in first.net if not isinstance(module, nn.Linear)]
        self.activation = hidden[0] if hidden else None  # the models' own activation module
        width = first.width
        self.shapes = list(zip(width[:-1], width[1:]))
        self.params = _stack_rows([list(m.parameters()) for m in models])
        self.grids: list[Tensor] = []  # MLPs have none

    def select(self, index: Tensor) -> None:
        """Keep only the models ``index`` (int64 ``[M']``) of the stack, in that order."""
        self.params = self.params[index]

    def _views(self, params: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Per linear layer: weight ``[M, out, in]`` and bias ``[M, out]``."""
        views, offset, m = [], 0, params.shape[0]
        for n_in, n_out in self.shapes:
            weight = params[:, offset : offset + n_in * n_out].view(m, n_out, n_in)
            offset += n_in * n_out
            views.append((weight, params[:, offset : offset + n_out]))
            offset += n_out
        return views

    def write_back(self, models: Sequence[MLP], rows: Sequence[int]) -> None:
        """Copy stack rows ``rows`` into ``models``."""
        views = self._views(self.params)
        for model, row in zip(models, rows):
            for (weight, bias), linear in zip(views, (mod for mod in model.net if isinstance(mod, nn.Linear))):
                _write(linear.weight, weight[row])
                _write(linear.bias, bias[row])

    def forward(self, params: Tensor, x: Tensor, with_penalty: bool = False, l1_weight: float = 1.0,
                entropy_weight: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """Outputs ``[M, B, out]``; MLPs have no sparsification penalty."""
        if with_penalty:
            raise ValueError("the sparsification penalty is defined for KAN models only")
        views = self._views(params)
        for i, (weight, bias) in enumerate(views):
            x = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
            if self.activation is not None and i < len(views) - 1:
                x = self.activation(x)
        return x, None


def stack(models: Sequence[nn.Module]) -> StackedKAN | StackedMLP:
    """The stack of ``models`` (all KANs or all MLPs of one configuration)."""
    if all(type(m) is KAN for m in models):
        return StackedKAN(models)  # type: ignore[arg-type]
    if all(type(m) is MLP for m in models):
        return StackedMLP(models)  # type: ignore[arg-type]
    raise TypeError("stack() takes KANs or MLPs of one kind")

