"""M same-shape models as one batched tensor program.

A stack holds every model's trainable parameters as one row of ``params [M, n]`` (the order of
``model.parameters()``, minus parameters the forward never uses) plus the buffers the forward
needs. Shapes carry the model axis first: inputs ``[M, B, in]``, outputs ``[M, B, out]``, per-edge
tensors ``[M, in, out]``, spline coefficients ``[M, in, out, G + k]``, grids ``[M, in, G + 2k + 1]``.
The forward takes the parameters as an argument so an optimizer can evaluate trial points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from kan import native, spline
from kan.layers import BASE_ACTIVATIONS, InputMemo, kernel_serves, native_constants
from kan.models import KAN, MLP


def _stack_rows(tensors: Sequence[Sequence[Tensor]]) -> Tensor:
    """One row per model: ``tensors[m]`` flattened and concatenated, ``[M, n]``."""
    return torch.stack([torch.cat([t.detach().reshape(-1) for t in row]) for row in tensors])


def _write(target: Tensor, value: Tensor) -> None:
    with torch.no_grad():
        target.copy_(value)


AFFINE = 4  # a symbolic edge's affine parameters (a, b, c, d): KANLayer.symbolic_affine [in, out, 4]


@dataclass(frozen=True)
class _KANLayerSlot:
    """Where one KAN layer's coef, scale_base, scale_spline and symbolic_affine sit in a params row
    (the order of the layer's parameters). Stacks have no symbolic edge, so the affine part never
    gets a gradient; it is kept so a row is the very vector a single fit's L-BFGS works on (its
    dot products, and so its iterates, depend on the layout)."""

    in_dim: int
    out_dim: int
    num_basis: int  # G + k
    offset: int

    @property
    def size(self) -> int:
        return self.in_dim * self.out_dim * (self.num_basis + 2 + AFFINE)

    def views(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``coef [M, in, out, G + k]``, ``scale_base [M, in, out]``, ``scale_spline [M, in, out]``."""
        coef, scale_base, scale_spline, _ = self.all_views(params)
        return coef, scale_base, scale_spline

    def all_views(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """:meth:`views` and ``symbolic_affine [M, in, out, 4]``."""
        m, edges = params.shape[0], self.in_dim * self.out_dim
        block = params[:, self.offset : self.offset + self.size]
        coef = block[:, : edges * self.num_basis].view(m, self.in_dim, self.out_dim, self.num_basis)
        scales = block[:, edges * self.num_basis : edges * (self.num_basis + 2)].view(m, 2, self.in_dim, self.out_dim)
        affine = block[:, edges * (self.num_basis + 2) :].view(m, self.in_dim, self.out_dim, AFFINE)
        return coef, scales[:, 0], scales[:, 1], affine


def _local_values(x: Tensor, grid: Tensor, order: int) -> tuple[Tensor, Tensor]:
    """:func:`spline.local_basis` of ``x [M, in, B]`` on uniform grids ``[M, in, knots]``: the values
    ``[M, k+1, in, B]`` (differentiable in x) and their padded columns (:func:`spline.local_columns`)."""
    start, step = spline.uniform_spacing(grid)
    values, _, floor = spline.local_basis((x - start) / step, order)
    cell = spline.padded_cell(floor, grid.shape[-1] - order - 1, order)
    return values, spline.local_columns(cell, order)


class _KeptInputLayer(torch.autograd.Function):
    """The kernel's fleet call on inputs that need no gradient, with their per-sample buffer kept
    by the caller between evaluations (filled by the first, read by the others), as a single fit
    keeps its first layer's: the basis of the training inputs is computed once per grid."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor, mask: Tensor | None,
        constants: native.Constants, activation: str, local: Tensor, mode: str,
    ) -> Tensor:
        out, packed = torch.ops.kan.layer_forward(x, coef, scale_base, scale_spline, mask, *constants, activation,
                                                  local, mode, False)
        ctx.save_for_backward(x, coef, scale_spline, packed)
        ctx.kept = (mask, constants, activation, local)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, coef, scale_spline, packed = ctx.saved_tensors
        mask, constants, activation, local = ctx.kept
        _, grad_coef, grad_base, grad_spline = torch.ops.kan.layer_backward(
            x, coef, scale_spline, mask, packed, grad_out.contiguous(), *constants, activation, False, local
        )
        return None, grad_coef, grad_base, grad_spline, None, None, None, None, None


@dataclass(eq=False, slots=True)
class _FleetState:
    """What a layer's fleet backward needs from its forward (:meth:`StackedKAN.fused_run`)."""

    x: Tensor
    coef: Tensor
    scale_spline: Tensor
    mask: Tensor | None
    packed: Tensor
    constants: native.Constants
    local: Tensor | None


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
            [[t for layer in m.layers for t in (layer.coef, layer.scale_base, layer.scale_spline, layer.symbolic_affine)]
             for m in models]
        )
        self._native_constants: dict[int, tuple[Tensor, native.Constants]] = {}
        self._kept = InputMemo()  # the first layer's per-sample buffers of inputs without gradient, by grid

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
        """Copy stack rows ``rows`` into ``models`` (grids, coefficients, scales, symbolic affine parameters)."""
        for model, row in zip(models, rows):
            for layer, slot, grid in zip(model.layers, self.slots, self.grids):
                coef, scale_base, scale_spline, affine = (v[row] for v in slot.all_views(self.params))
                layer.grid = grid[row].clone()
                if layer.coef.shape == coef.shape:
                    _write(layer.coef, coef)
                else:
                    layer.coef = nn.Parameter(coef.clone())
                _write(layer.scale_base, scale_base)
                _write(layer.scale_spline, scale_spline)
                _write(layer.symbolic_affine, affine)

    def forward(self, params: Tensor, x: Tensor, with_penalty: bool = False, l1_weight: float = 1.0,
                entropy_weight: float = 1.0, rows: list[int] | None = None) -> tuple[Tensor, Tensor | None]:
        """Outputs ``[M, B, out]`` of ``x [M, B, in]`` and, if asked, the per-model penalty ``[M]``
        ``Σ_l μ1 |Φ_l|_1 + μ2 S(Φ_l)`` (paper eq. 2.20, as :meth:`KAN.forward_with_penalty`); with
        ``rows``, those of the stack rows ``rows`` only (``params`` holds theirs, ``x`` every row's).
        Without the penalty, where the compiled kernel serves, every model runs the kernel call it
        would run alone (:mod:`kan.native`)."""
        if not with_penalty and kernel_serves(x, params.dtype, self.order, self.activation_name):
            return self._native_forward(params, x, rows), None
        grids, masks = self.grids, self.masks
        if rows is not None:
            x, grids, masks = x[rows], [g[rows] for g in grids], [None if m is None else m[rows] for m in masks]
        x = x.transpose(1, 2).contiguous()  # features first: [M, in, B]
        penalty = None
        for slot, grid, mask in zip(self.slots, grids, masks):
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

    def _native_forward(self, params: Tensor, x: Tensor, rows: list[int] | None) -> Tensor:
        """:meth:`forward`'s outputs through the kernel's fleet call, model by model, of every row or
        of ``rows``; the first layer's per-sample buffer is kept for an input without gradient that
        comes back (and a subset of rows reads its rows of it)."""
        given, x = x, (x if rows is None else x[rows]).contiguous()
        for index, grid, (coef, scale_base, scale_spline, mask, constants) in self._kernel_arguments(params, rows):
            kept = self._kept_buffer(given, grid, rows) if index == 0 and not given.requires_grad else None
            if kept is None:
                x = native.layer(x, coef, scale_base, scale_spline, mask, constants, self.activation_name)
                continue
            x = _KeptInputLayer.apply(x, coef, scale_base, scale_spline, mask, constants, self.activation_name, *kept)
            if kept[1] == native.LOCAL_FILL:  # remembered only once filled
                self._kept.put(given, grid, kept[0])
        return x

    def _kernel_arguments(
        self, params: Tensor, rows: list[int] | None,
    ) -> Iterator[tuple[int, Tensor, tuple[Tensor, Tensor, Tensor, Tensor | None, native.Constants]]]:
        """Per layer: its index, its grids (every row's) and the kernel's (coef, scale_base,
        scale_spline, mask, constants) of every row or of ``rows``, contiguous."""
        for index, (slot, grid, mask) in enumerate(zip(self.slots, self.grids, self.masks)):
            coef, scale_base, scale_spline = (t.contiguous() for t in slot.views(params))
            constants = self._constants(index, grid)
            if rows is not None:
                constants = (constants[0][rows], constants[1][rows], constants[2], None)
                mask = None if mask is None else mask[rows]
            yield index, grid, (coef, scale_base, scale_spline, mask, constants)

    def fused_run(self, params: Tensor, x: Tensor, rows: list[int] | None = None) -> tuple[Tensor, list[_FleetState]]:
        """:meth:`forward`'s outputs through the kernel without autograd (as a single KAN's
        :func:`kan.layers.fused_layers_run`), and every layer's state for :meth:`fused_backprop`.
        Needs the kernel to serve the stack (:func:`kan.layers.kernel_serves`) and no penalty."""
        given, x = x, (x if rows is None else x[rows]).contiguous()
        states = []
        for index, grid, (coef, scale_base, scale_spline, mask, constants) in self._kernel_arguments(params, rows):
            if index == 0:
                local, mode = self._kept_buffer(given, grid, rows) or (None, native.LOCAL_NONE)
            else:  # a hidden activation: filled with its slopes for the backward
                local, mode = self._fresh_buffer(x), native.LOCAL_FILL
            out, packed = torch.ops.kan.layer_forward(x, coef, scale_base, scale_spline, mask, *constants,
                                                      self.activation_name, local, mode, index > 0)
            if index == 0 and mode == native.LOCAL_FILL:
                self._kept.put(given, grid, local)
            states.append(_FleetState(x, coef, scale_spline, mask, packed, constants, local))
            x = out
        return x, states

    def fused_backprop(self, states: Sequence[_FleetState], grad_out: Tensor) -> Tensor:
        """The gradient ``[R, n]`` of the parameters from the output gradient ``grad_out [R, B, out]``
        and the states of :meth:`fused_run`."""
        grad = grad_out.new_zeros(grad_out.shape[0], self.params.shape[1])
        for index in range(len(states) - 1, -1, -1):
            state = states[index]
            grad_out, *param_grads = torch.ops.kan.layer_backward(
                state.x, state.coef, state.scale_spline, state.mask, state.packed, grad_out.contiguous(),
                *state.constants, self.activation_name, index > 0, state.local,
            )
            for target, value in zip(self.slots[index].views(grad), param_grads):
                target.copy_(value)
        return grad

    def _fresh_buffer(self, x: Tensor) -> Tensor | None:
        """An empty per-sample buffer for every model's layer on ``x [M, B, in]``; None over the kernel's size limit."""
        models, batch, n_in = x.shape
        size = torch.ops.kan.local_size(batch, n_in, self.order)
        if 8 * models * size > torch.ops.kan.local_bytes_kept():
            return None
        return torch.empty(models, size, dtype=torch.float64)

    def _kept_buffer(self, x: Tensor, grid: Tensor, rows: list[int] | None) -> tuple[Tensor, str] | None:
        """``(buffer, mode)`` for the first layer on ``x`` (every row's ``[M, B, in]``, no gradient):
        "read" for one of the last two inputs on this grid (its ``rows`` only, if given), else, for
        every row, a new buffer to "fill"; None for a subset of rows of an input not yet filled, and
        where the kernel would not keep it (over its size limit, inference tensors)."""
        buffer = self._kept.find(x, grid)
        if buffer is not None:
            return (buffer if rows is None else buffer[rows]), native.LOCAL_READ
        if rows is not None or x.is_inference():
            return None
        fresh = self._fresh_buffer(x)
        return None if fresh is None else (fresh, native.LOCAL_FILL)

    def _constants(self, index: int, grid: Tensor) -> native.Constants:
        """The kernel's constants of layer ``index``'s grids, kept while that grid tensor is current."""
        cached = self._native_constants.get(index)
        if cached is None or cached[0] is not grid:
            cached = (grid, native_constants(grid, self.order, uniform=True))
            self._native_constants[index] = cached
        return cached[1]

    def _layer(self, x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
               mask: Tensor | None) -> Tensor:
        """One layer, features first: ``[M, in, B] → [M, out, B]``: the kernel's fleet call where it
        serves (as each model's own layer computes it), else :meth:`_plain_layer`."""
        if kernel_serves(x, coef.dtype, self.order, self.activation_name):
            out = native.layer(x.mT.contiguous(), coef.contiguous(), scale_base.contiguous(), scale_spline.contiguous(),
                               mask, native_constants(grid, self.order, uniform=True), self.activation_name)
            return out.mT
        return self._plain_layer(x, grid, coef, scale_base, scale_spline, mask)

    def _plain_layer(self, x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
                     mask: Tensor | None) -> Tensor:
        """:meth:`_layer` from plain differentiable ops (the reference the kernel is checked against,
        and the path on GPUs): a single layer's (:func:`kan.layers.spline_base_plain`) batched over
        models, one padded basis per (model, input) and batched products, no per-edge tensor."""
        m, n_in, batch = x.shape
        k, n_out = self.order, coef.shape[2]
        columns = x.permute(2, 0, 1).reshape(batch, m * n_in)  # every (model, input) is one column
        basis = spline.uniform_bspline_basis_padded(columns, grid.reshape(m * n_in, -1), k)  # [B, M·in, width]
        basis = basis.view(batch, m, -1).transpose(0, 1)  # [M, B, in·width]
        spline_scale = scale_spline if mask is None else scale_spline * mask
        weight = (F.pad(coef, (k, k)) * spline_scale.unsqueeze(-1)).transpose(2, 3).reshape(m, -1, n_out)
        base_weight = scale_base if mask is None else scale_base * mask
        base = torch.bmm(base_weight.transpose(1, 2), BASE_ACTIVATIONS[self.activation_name](x))  # [M, out, B]
        return torch.baddbmm(base, weight.transpose(1, 2), basis.transpose(1, 2))

    def _edges(self, x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
               mask: Tensor | None) -> Tensor:
        """Every edge's activation φ ``[M, in, out, B]`` of ``x [M, in, B]`` (masked edges are zero)."""
        m, n_in, batch = x.shape
        k, n_out = self.order, coef.shape[2]
        values, columns = _local_values(x, grid, k)  # [M, k+1, in, B]
        index = columns.transpose(1, 2).reshape(m, n_in, 1, -1)  # [M, in, 1, (k+1)·B]
        padded = spline.pad_functions(coef, k)  # [M, in, out, width]
        rows = torch.gather(padded, 3, index.expand(m, n_in, n_out, -1)).view(m, n_in, n_out, k + 1, batch)
        spline_part = (rows * values.transpose(1, 2).unsqueeze(2)).sum(dim=3)
        base = BASE_ACTIVATIONS[self.activation_name](x).unsqueeze(2) * scale_base.unsqueeze(-1)
        phi = base + spline_part * scale_spline.unsqueeze(-1)
        return phi if mask is None else phi * mask.unsqueeze(-1)

    @torch.no_grad()
    def update_grid(self, x: Tensor, num_intervals: int | None, uniform_fraction: float = 1.0) -> None:
        """:meth:`KAN.update_grid` of every model, with uniform grids: per model and layer, knots follow
        that layer's inputs ``x [M, B, in]`` and the splines are refit by least squares, one model at a
        time with :func:`spline.follow_samples` (what a single layer runs, so the stack stays bit for bit
        equal to single fits; M small solves, at grid switches only)."""
        if uniform_fraction != 1.0:
            raise ValueError("stacked KANs keep uniform grids (uniform_fraction = 1)")
        size = self.num_intervals if num_intervals is None else int(num_intervals)
        k, m = self.order, self.num_models
        x = x.transpose(1, 2).contiguous()
        new_grids, blocks = [], []
        for slot, grid, mask in zip(self.slots, self.grids, self.masks):
            coef, scale_base, scale_spline, affine = slot.all_views(self.params)
            # model by model, with a single layer's shapes: batched solves round differently
            refits = [spline.follow_samples(x[row].T.contiguous(), grid[row], coef[row], size, k, 1.0, True)
                      for row in range(m)]
            new_grid, new_coef = torch.stack([g for g, _ in refits]), torch.stack([c for _, c in refits])
            x = self._layer(x, new_grid, new_coef, scale_base, scale_spline, mask)
            new_grids.append(new_grid)
            blocks += [new_coef, scale_base, scale_spline, affine]
        self.grids = new_grids
        self.slots = self._layout(size)
        self.params = torch.cat([t.reshape(m, -1) for t in blocks], dim=1)


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
                entropy_weight: float = 1.0, rows: list[int] | None = None) -> tuple[Tensor, Tensor | None]:
        """Outputs ``[M, B, out]`` (of the stack rows ``rows`` only, if given: ``params`` holds theirs,
        ``x`` every row's); MLPs have no sparsification penalty."""
        if with_penalty:
            raise ValueError("the sparsification penalty is defined for KAN models only")
        x = x if rows is None else x[rows]
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

