"""The KAN layer: one learnable activation per edge, φ(x) = w_b·b(x) + w_s·spline(x).

Shapes: input ``[batch, in]``, output ``[batch, out]``; per-edge tensors are ``[in, out]``;
spline coefficients ``[in, out, G + k]``. A pruned edge has ``mask = 0``; an edge fixed to a
symbolic function ``c·f(a·x + b) + d`` has ``symbolic_mask = 1`` and skips its numeric branch.

The numeric edges have two implementations: the plain differentiable ops
(:func:`spline_base_plain`, the reference, used on GPUs, without a C++ compiler and for higher
derivatives) and the compiled CPU kernel (:mod:`kan.native`), which runs consecutive layers as one
autograd node.
"""

from __future__ import annotations

import contextlib
import functools
import math
import weakref
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kan import native, spline
from kan.symbolic_library import get_function

BASE_ACTIVATIONS = {"silu": F.silu, "identity": lambda x: x, "zero": torch.zeros_like}
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
DTYPE_NAMES = tuple(_DTYPES)  # the dtypes a layer computes in, by name
COMPUTE_DTYPES = tuple(_DTYPES.values())  # the plain ops' basis (torch.linalg.vander) needs these

# A grid layout keeps the kernel calls for this many batch sizes.
NATIVE_CALLS_KEPT = 8

_fast_path = True
# What a layer derives from its tensors and inputs and keeps in its __dict__ (never copied).
_DERIVED_CACHES = ("_numeric_cache", "_layout_cache", "_native_memo")


def resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """``torch.float32`` / ``torch.float64`` from a dtype or its name; anything else is a ValueError."""
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"unsupported dtype {dtype!r}; use one of {', '.join(map(repr, _DTYPES))}")
        return _DTYPES[dtype]
    dtype_name(dtype)
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    """The name of a supported dtype (``"float32"`` / ``"float64"``); anything else is a ValueError."""
    for name, value in _DTYPES.items():
        if value == dtype:
            return name
    raise ValueError(f"unsupported dtype {dtype}; use torch.float32 or torch.float64")


@contextlib.contextmanager
def use_fast_path(enabled: bool) -> Iterator[None]:
    """Switch the compiled kernel's layer path on or off inside the block.

    Off, layers run the plain differentiable ops (the reference). The kernel path is already
    exact for higher derivatives (under ``create_graph`` its backward re-runs the plain ops),
    so this switch is for cross-checks and benchmarks.
    """
    global _fast_path
    previous, _fast_path = _fast_path, enabled
    try:
        yield
    finally:
        _fast_path = previous


def spline_base_plain(
    x: Tensor, grid: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor, numeric: Tensor | None,
    order: int, activation: str, uniform: bool,
) -> Tensor:
    """Reference layer output ``[batch, out]`` (numeric edges only) built from differentiable ops."""
    batch, n_out = x.shape[0], coef.shape[1]
    if uniform:
        basis, coef = spline.uniform_bspline_basis_padded(x, grid, order), F.pad(coef, (order, order))
    else:
        basis = spline.bspline_basis(x, grid, order)
    spline_scale = scale_spline if numeric is None else scale_spline * numeric
    weight = (coef * spline_scale.unsqueeze(-1)).transpose(1, 2).reshape(-1, n_out)  # [in·nb, out]
    base_weight = scale_base if numeric is None else scale_base * numeric
    base = BASE_ACTIVATIONS[activation](x) @ base_weight
    return torch.addmm(base, basis.reshape(batch, -1), weight)


@dataclass(frozen=True, eq=False)
class _GridLayout:
    """The constants of one grid that the kernel needs, cached by the layer."""

    grid: Tensor  # [in, G + 2k + 1]
    version: int  # grid._version when built
    order: int
    uniform: bool
    activation: str

    @classmethod
    def build(cls, grid: Tensor, order: int, uniform: bool, activation: str) -> "_GridLayout":
        return cls(grid, grid._version, order, uniform, activation)

    @functools.cached_property
    def native_constants(self) -> native.Constants:
        """:func:`native_constants` of this grid."""
        return native_constants(self.grid, self.order, self.uniform)

    def native_call(self, batch: int) -> native.LayerCall:
        """The compiled kernel's call on ``batch`` samples (kept for the layout's life)."""
        calls: dict[int, native.LayerCall] = self.__dict__.setdefault("_native_calls", {})
        call = calls.get(batch)
        if call is None:
            if len(calls) >= NATIVE_CALLS_KEPT:
                calls.clear()
            call = native.LayerCall(batch, self.activation, self.native_constants)
            calls[batch] = call
        return call


def _uniform_placement(grid: Tensor) -> tuple[Tensor, Tensor]:
    """``[in, 1]`` scale (1 / knot spacing) and shift (-(first knot) / spacing) of uniform grids."""
    start, step = spline.uniform_spacing(grid)
    return 1 / step, -start / step


def native_constants(grid: Tensor, order: int, uniform: bool) -> native.Constants:
    """:class:`kan.native.LayerCall`'s float64 CPU constants of grids ``[..., in, knots]`` (a fleet's
    have a leading model axis), from tensor ops only (torch.compile traces them): scale, shift
    ``[..., in]`` and local polynomials of uniform grids; unit scale, zero shift, the polynomials
    (unused) and the knots of others."""
    poly = _native_polynomials(order)
    if uniform:
        return *(_cpu_float64(t) for t in _uniform_placement(grid)), poly, None
    knots = grid.detach().to("cpu", torch.float64).contiguous()
    return knots.new_ones(knots.shape[:-1]), knots.new_zeros(knots.shape[:-1]), poly, knots


def _native_polynomials(order: int) -> Tensor:
    """:func:`kan.spline.local_value_slope_matrix` on the CPU in float64 (a constant when traced)."""
    return spline.local_value_slope_matrix(order, torch.float64, torch.device("cpu")).contiguous()


# What torch.compiler.assume_constant_result does (torch 2.13, pinned), without importing
# torch._dynamo at import time: that costs about a second in every process (each workflow job).
# The torch.compile tests of tests/core/test_native.py trace through it.
_native_polynomials._dynamo_marked_constant = True  # type: ignore[attr-defined]


def _cpu_float64(values: Tensor) -> Tensor:
    """``[..., 1]`` per-input values as a contiguous float64 CPU tensor ``[...]``."""
    return values.detach().squeeze(-1).to("cpu", torch.float64).contiguous()


@dataclass(eq=False, slots=True)
class _NativeState:
    """What the compiled kernel's backward needs from its forward (see :mod:`kan.native`)."""

    layout: _GridLayout
    call: native.LayerCall
    x: Tensor  # contiguous [batch, in]
    coef: Tensor
    scale_spline: Tensor
    numeric: Tensor | None
    packed: Tensor  # the scaled weights the forward used
    local: Tensor | None  # per-sample basis values the forward filled or read (None: recompute)

    def backward(self, grad_out: Tensor, need: tuple[bool, ...]) -> tuple[Tensor | None, ...]:
        """Gradients of (x, coef, scale_base, scale_spline); x only if ``need[0]``."""
        return self.call.backward(
            self.x, self.coef, self.scale_spline, self.numeric, self.packed, grad_out, need[0], self.local
        )


_MISSING = object()


class InputMemo:
    """Values derived from the last two input tensors (weakly referenced) on one grid: an input
    matches while it is unmodified (same ``_version``) and ``grid`` is the same object (a layer's
    grid layout, a stack's grid tensor); a full-batch fit evaluates the same training and test
    tensors over and over. Inference tensors (``torch.inference_mode``) have no version counter and
    are never remembered. Writes that bypass the version counter (through ``.data`` or a numpy view)
    are not seen: give the layer a new tensor, or call :meth:`KANLayer.forget_inputs`, after
    changing one in place that way."""

    def __init__(self) -> None:
        self.entries: list[tuple[weakref.ref, int, object, Any]] = []

    def find(self, x: Tensor, grid: object, default: Any = None) -> Any:
        if x.is_inference():
            return default
        for entry in self.entries:
            if self._matches(entry, x, grid):
                return entry[3]
        return default

    def put(self, x: Tensor, grid: object, value: Any) -> None:
        """Remember ``value`` for ``x``, replacing its entry or the older of the other two."""
        if x.is_inference():
            return
        alive = [e for e in self.entries if e[0]() is not None and not self._matches(e, x, grid)]
        self.entries = [(weakref.ref(x), x._version, grid, value), *alive[:1]]

    @staticmethod
    def _matches(entry: tuple[weakref.ref, int, object, Any], x: Tensor, grid: object) -> bool:
        ref, version, cached_grid, _ = entry
        return ref() is x and version == x._version and cached_grid is grid


def _native_forward(
    layout: _GridLayout, call: native.LayerCall, x: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor,
    numeric: Tensor | None, local: tuple[Tensor | None, str, bool],
) -> tuple[Tensor, _NativeState]:
    """Numeric-edge layer output ``[batch, out]`` from the compiled kernel; ``local`` is
    ``(buffer, mode, slopes)`` as :meth:`kan.native.LayerCall.forward` takes them."""
    x, coef = x.contiguous(), coef.contiguous()
    scale_base, scale_spline = scale_base.contiguous(), scale_spline.contiguous()
    numeric = None if numeric is None else numeric.contiguous()
    out, packed = call.forward(x, coef, scale_base, scale_spline, numeric, *local)
    return out, _NativeState(layout, call, x, coef, scale_spline, numeric, packed, local[0])


class _FusedLayers(torch.autograd.Function):
    """Autograd wrapper of consecutive layers' :meth:`KANLayer.fused_forward` and their states'
    backwards: one graph node for a whole KAN. Under ``create_graph`` the backward re-runs the
    plain ops, so higher derivatives are exact."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, layers: tuple["KANLayer", ...], input_grad: bool, *params: Tensor
    ) -> Tensor:
        ctx.layers, ctx.input_grad = layers, input_grad
        ctx.save_for_backward(x, *params)
        out, ctx.states = fused_layers_run(layers, x, input_grad)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():  # create_graph: differentiate the plain ops instead
            return _plain_backward(ctx, grad_out)
        grad_x, grads = fused_layers_backprop(ctx.states, grad_out, ctx.input_grad, need[3:])
        return (grad_x, None, None, *grads)


def _plain_backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
    """:class:`_FusedLayers`'s backward through the plain differentiable ops."""
    x, *params = ctx.saved_tensors
    out = x
    for index, state in enumerate(ctx.states):
        coef, scale_base, scale_spline = params[3 * index: 3 * index + 3]
        layout = state.layout
        out = spline_base_plain(out, layout.grid, coef, scale_base, scale_spline, state.numeric, layout.order,
                                layout.activation, layout.uniform)
    need = ctx.needs_input_grad
    inputs = (x, *params)
    flags = (need[0], *need[3:])
    wanted = [t for t, n in zip(inputs, flags) if n]
    grads = iter(torch.autograd.grad(out, wanted, grad_out, create_graph=True, allow_unused=True))
    found = [next(grads) if n else None for n in flags]
    return (found[0], None, None, *found[1:])


def fused_layers_run(
    layers: Sequence["KANLayer"], x: Tensor, input_grad: bool
) -> tuple[Tensor, list[_NativeState]]:
    """``x`` through consecutive :attr:`KANLayer.fusable` layers without autograd, and every
    layer's state for :func:`fused_layers_backprop` (``input_grad``: whether it must return the
    gradient of x)."""
    states = []
    for index, layer in enumerate(layers):
        x, state = layer.fused_forward(x, input_grad or index > 0)
        states.append(state)
    return x, states


def fused_layers_backprop(
    states: Sequence[_NativeState], grad_out: Tensor, input_grad: bool,
    param_need: Sequence[bool] | None = None,
) -> tuple[Tensor | None, list[Tensor | None]]:
    """Gradient of the input (None unless ``input_grad``) and of (coef, scale_base, scale_spline)
    of every layer, in layer order, from the states of :func:`fused_layers_run`; ``param_need``
    (3 flags per layer, default all) skips gradients nobody wants."""
    grads: list[Tensor | None] = []
    for index in range(len(states) - 1, -1, -1):
        wanted = (True, True, True) if param_need is None else tuple(param_need[3 * index: 3 * index + 3])
        grad_out, *param_grads = states[index].backward(grad_out, (input_grad or index > 0, *wanted))
        grads[:0] = param_grads
    return (grad_out if input_grad else None), grads


def fused_layers_forward(layers: Sequence["KANLayer"], x: Tensor) -> Tensor:
    """``x`` through consecutive :attr:`KANLayer.fusable` layers as one autograd node."""
    input_grad = x.requires_grad and torch.is_grad_enabled()
    params = [p for layer in layers for p in (layer.coef, layer.scale_base, layer.scale_spline)]
    if input_grad or torch.is_grad_enabled() and any(p.requires_grad for p in params):
        return _FusedLayers.apply(x, tuple(layers), input_grad, *params)
    for layer in layers:  # nothing to differentiate: skip the autograd wrapper
        x = layer.fused_forward(x, input_grad=False, backward=False)[0]
    return x


def check_input(x: Tensor, width: int, owner: str, dtype: torch.dtype) -> None:
    """Raise a clear error unless ``x`` is a ``[batch, width]`` tensor of the model's ``dtype``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner} expects a torch.Tensor [batch, {width}], got {type(x).__name__} "
                        "(wrap arrays with torch.as_tensor)")
    if x.dim() != 2 or x.shape[1] != width:
        raise ValueError(f"{owner} expects input of shape [batch, {width}], got {list(x.shape)}")
    if dtype not in COMPUTE_DTYPES:
        raise TypeError(f"{owner} computes in float32 or float64, but its weights are {dtype}; convert the model "
                        "with .float() or .double()")
    if x.dtype != dtype:
        raise TypeError(f"{owner} expects input of the model's dtype {dtype}, got {x.dtype}; convert it with .to({dtype})")


def check_samples(x: Tensor, width: int, owner: str, dtype: torch.dtype) -> None:
    """:func:`check_input`, and for samples that ``owner`` derives something from (a grid, edge
    scores, a symbolic fit, a plot's ranges) also at least one row and only finite values."""
    check_input(x, width, owner, dtype)
    if x.shape[0] == 0:
        raise ValueError(f"{owner} needs samples, got an empty batch of shape {list(x.shape)}")
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        rows = int((~finite.all(dim=1)).sum())
        raise ValueError(f"{owner} got {rows} sample row(s) with NaN or inf out of {x.shape[0]}; drop or repair them")


def kernel_serves(x: Tensor, dtype: torch.dtype, order: int, activation: str) -> bool:
    """Whether a layer with weights of ``dtype`` runs ``x`` in the compiled kernel: fast path on
    (:func:`use_fast_path`) and a kernel that serves it (:func:`kan.native.supports`)."""
    return _fast_path and native.supports(x, dtype, order, activation)


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
        dtype: torch.dtype | str = torch.float32,
    ) -> None:
        super().__init__()
        dtype = resolve_dtype(dtype)
        if not (spline.is_whole(in_dim) and spline.is_whole(out_dim)) or in_dim < 1 or out_dim < 1:
            raise ValueError(f"layer dimensions must be whole numbers >= 1, got in_dim={in_dim!r}, out_dim={out_dim!r}")
        in_dim, out_dim = int(in_dim), int(out_dim)
        if base_activation not in BASE_ACTIVATIONS:
            raise ValueError(f"unknown base activation {base_activation!r}; known: {', '.join(BASE_ACTIVATIONS)}")
        spline.check_grid_size(num_intervals, order)
        num_intervals, order = int(num_intervals), int(order)
        if len(grid_range) != 2 or not all(math.isfinite(bound) for bound in grid_range):
            raise ValueError(f"grid_range must be two finite numbers (low, high), got {grid_range}")
        low, high = grid_range
        if not low < high:
            raise ValueError(f"grid_range must satisfy low < high, got {grid_range}")
        if not (math.isfinite(noise_scale) and noise_scale >= 0):
            raise ValueError(f"noise_scale must be a finite number >= 0, got {noise_scale}")
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
        native.available()  # load the kernel now: loading it inside torch.compile's trace breaks the graph

    def __getstate__(self) -> dict[str, Any]:
        """Pickling and deep copies leave out the derived caches (rebuilt on use): grid layouts,
        the kernel's calls with their constant tensors, and what the layer remembers of its inputs."""
        return {key: value for key, value in super().__getstate__().items() if key not in _DERIVED_CACHES}

    @property
    def num_intervals(self) -> int:
        """G, the number of grid intervals."""
        return self.grid.shape[1] - 2 * self.order - 1

    def _numeric_mask(self) -> Tensor:
        return self.mask * (1 - self.symbolic_mask)

    def _cached_numeric_mask(self) -> Tensor | None:
        """:meth:`_numeric_mask`, or None when every edge is numeric; rebuilt only after the masks change."""
        mask, symbolic = self.mask, self.symbolic_mask
        cached = self.__dict__.get("_numeric_cache")
        if (
            cached is None or cached[0] is not mask or cached[1] != mask._version or cached[2] is not symbolic
            or cached[3] != symbolic._version
        ):
            numeric = self._numeric_mask()
            cached = (mask, mask._version, symbolic, symbolic._version, None if bool((numeric == 1).all()) else numeric)
            self.__dict__["_numeric_cache"] = cached
        return cached[4]

    def _layout(self) -> _GridLayout:
        cached = self.__dict__.get("_layout_cache")
        if (
            cached is None or cached.grid is not self.grid or cached.version != self.grid._version
            or cached.uniform != self.uniform
        ):
            cached = _GridLayout.build(self.grid, self.order, self.uniform, self.base_activation)
            self.__dict__["_layout_cache"] = cached
        return cached

    @property
    def fusable(self) -> bool:
        """Whether :meth:`fused_forward` applies: :attr:`fused_numeric` and no symbolic edge."""
        return self.fused_numeric and not self.symbolic_names

    @property
    def fused_numeric(self) -> bool:
        """Whether the numeric edges run in the compiled kernel: fast path on and a kernel that
        serves the layer (CPU, float32/float64, its orders and activations)."""
        return _fast_path and native.serves(self.coef, self.order, self.base_activation)

    def _native_local(
        self, x: Tensor, layout: _GridLayout, call: native.LayerCall, input_grad: bool, backward: bool
    ) -> tuple[tuple[Tensor | None, str, bool], bool]:
        """The kernel's per-sample buffer for ``x`` as ``(buffer, mode, slopes)``, and whether to
        remember it for ``x`` once the forward has filled it. A backward gets a filled buffer (with
        slopes for the gradient of x); an input without gradient that comes back (the last two per
        layer are remembered) is computed once and read afterwards. Buffers over the kernel's size
        limit are not kept (``call.keeps_local``): it recomputes."""
        if not call.keeps_local:
            return (None, native.LOCAL_NONE, False), False
        if input_grad:  # a hidden activation in training: it never comes back
            return (call.local_buffer(), native.LOCAL_FILL, True), False
        memo: InputMemo = self.__dict__.setdefault("_native_memo", InputMemo())
        buffer = memo.find(x, layout, _MISSING)
        if buffer is not _MISSING and buffer is not None:
            return (buffer, native.LOCAL_READ, False), False
        # seen before without a buffer (None): worth keeping now; first sight: only for a backward
        buffer = call.local_buffer() if buffer is None or backward else None
        return (buffer, native.LOCAL_FILL if buffer is not None else native.LOCAL_NONE, False), True

    def forget_inputs(self) -> None:
        """Drop what the layer derives from its last inputs and from its own ``grid``, ``mask`` and
        ``symbolic_mask`` (needed only after changing one of them in place through ``.data`` or a
        numpy view, which version counters do not see; :func:`kan.fit` does it when it starts)."""
        for cache in _DERIVED_CACHES:
            self.__dict__.pop(cache, None)

    def fused_forward(
        self, x: Tensor, input_grad: bool, backward: bool = True
    ) -> tuple[Tensor, _NativeState]:
        """Output ``[batch, out]`` computed by the kernel without autograd, and the state whose
        ``backward`` gives the gradients (``input_grad``: whether it must return the gradient of x;
        ``backward``: whether a backward will follow at all). Needs :attr:`fused_numeric`."""
        if not native.supports(x, self.coef.dtype, self.order, self.base_activation):
            raise ValueError(f"KANLayer: the compiled kernel runs inputs of the layer's dtype on the CPU "
                             f"({self.coef.dtype}), got {x.dtype} on {x.device}")
        layout = self._layout()
        call = layout.native_call(x.shape[0])
        params = (self.coef, self.scale_base, self.scale_spline, self._cached_numeric_mask())
        local, remember = self._native_local(x, layout, call, input_grad, backward)
        result = _native_forward(layout, call, x, *params, local)
        if remember:  # only once filled: another thread may read it as soon as it is remembered
            self.__dict__.setdefault("_native_memo", InputMemo()).put(x, layout, local[0])
        return result

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.in_dim, "KANLayer", self.coef.dtype)
        if torch.compiler.is_compiling():
            out = self._traced_numeric(x)
        elif self.fused_numeric:
            out = fused_layers_forward((self,), x)
        else:
            out = spline_base_plain(
                x, self.grid, self.coef, self.scale_base, self.scale_spline, self._cached_numeric_mask(), self.order,
                self.base_activation, self.uniform,
            )
        if self.symbolic_names:
            values, _, outputs = self._symbolic_edge_values(x)
            out = out.index_add(1, outputs, values)
        return out

    def _traced_numeric(self, x: Tensor) -> Tensor:
        """The numeric edges' output without the layer's caches, for torch.compile: the registered
        operator (``torch.ops.kan.layer``) where the kernel serves, else the plain ops."""
        numeric = self._numeric_mask()
        if kernel_serves(x, self.coef.dtype, self.order, self.base_activation):
            constants = native_constants(self.grid, self.order, self.uniform)
            return native.layer(x, self.coef, self.scale_base, self.scale_spline, numeric, constants,
                                self.base_activation)
        return spline_base_plain(x, self.grid, self.coef, self.scale_base, self.scale_spline, numeric, self.order,
                                 self.base_activation, self.uniform)

    def edge_activations(self, x: Tensor) -> Tensor:
        """Every edge's φ at every sample, ``[batch, in, out]``; summing over ``in`` gives forward."""
        check_input(x, self.in_dim, "KANLayer", self.coef.dtype)
        spline_part = self.spline_values(x)
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
        return spline.spline_values(x, self.grid, self.coef, self.order, self.uniform)

    @torch.no_grad()
    def update_grid(self, x: Tensor, num_intervals: int | None = None, uniform_fraction: float = 1.0) -> None:
        """Move the knots to follow the samples ``x`` and refit the splines to stay the same function.

        ``uniform_fraction = 1`` keeps per-input uniform grids; smaller values mix in sample
        percentiles (paper's grid_eps): non-uniform grids, which only the compiled kernel runs fast
        (elsewhere the layer uses the Cox-de Boor ops).
        """
        check_samples(x, self.in_dim, "KANLayer.update_grid", self.coef.dtype)
        size = self.num_intervals if num_intervals is None else num_intervals
        new_grid, coef = spline.follow_samples(x, self.grid, self.coef, size, self.order, uniform_fraction,
                                               self.uniform)
        self._replace(new_grid, coef, uniform=uniform_fraction == 1.0)

    @torch.no_grad()
    def extend_grid(self, num_intervals: int) -> None:
        """Least-squares refit onto a uniform grid with ``num_intervals`` on the same range."""
        k = self.order
        new_grid = spline.uniform_grid(self.grid[:, k], self.grid[:, -k - 1], num_intervals, k)
        coef = spline.refit(spline.grid_samples(new_grid, k), self.grid, self.coef, new_grid, k, self.uniform)
        self._replace(new_grid, coef, uniform=True)

    def _replace(self, new_grid: Tensor, coef: Tensor, uniform: bool) -> None:
        """Install a refitted grid and its coefficients."""
        self.grid = new_grid
        self.uniform = uniform
        if coef.shape == self.coef.shape:
            self.coef.data = coef  # same parameter object: an optimizer keeps tracking it
        else:  # a new parameter (rebuild an optimizer of your own); frozen stays frozen
            self.coef = nn.Parameter(coef, requires_grad=self.coef.requires_grad)

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """A state of the same layer at another G loads too (e.g. the last good state of a training
        stopped right after a grid switch): grid and coefficients take its size first."""
        grid, coef = state_dict.get(prefix + "grid"), state_dict.get(prefix + "coef")
        if (isinstance(grid, Tensor) and isinstance(coef, Tensor) and grid.shape != self.grid.shape
                and grid.dim() == 2 and coef.dim() == 3 and grid.shape[0] == self.in_dim
                and coef.shape[:2] == self.coef.shape[:2]
                and grid.shape[1] - coef.shape[2] == self.order + 1):  # G + 2k + 1 knots, G + k coefficients
            self._replace(self.grid.new_empty(grid.shape), self.coef.new_empty(coef.shape), self.uniform)
            self.forget_inputs()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "uniform": self.uniform,
            "symbolic_names": [[i, j, name] for (i, j), name in sorted(self.symbolic_names.items())],
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.uniform = bool(state["uniform"])
        self.symbolic_names = {(int(i), int(j)): str(name) for i, j, name in state["symbolic_names"]}
