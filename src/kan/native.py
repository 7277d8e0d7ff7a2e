"""Optional compiled kernel for KAN layers on per-input knot grids, uniform or not (CPU, float32/float64),
registered as PyTorch operators.

``csrc/kan_op.cpp`` compiles the C kernel (``csrc/uniform_kan.c``) into operators in the ``kan``
namespace (``torch.ops.kan``): ``layer_forward`` and ``layer_backward`` (the kernel's two passes,
with meta kernels for tracing), ``layer`` (the differentiable layer, its autograd formula in C++,
for :func:`layer` and ``torch.compile``) and the kernel's limits and buffer sizes. The library is
built with the system C++ compiler against the installed torch on first use and cached under
``$KAN_NATIVE_CACHE`` (default ``~/.cache/kan-repro``), keyed by sources, compiler, flags, CPU and
torch. Without a compiler (``$CXX``, default ``c++``), after a failed build or with
``KAN_NATIVE=0``, layers use the plain differentiable ops (:func:`kan.layers.spline_base_plain`); the
two agree to rounding. Small layers gain most: one kernel call replaces dozens of tensor operations.
Every operator also takes a fleet: a leading model axis on every tensor but the polynomials, each
model running the call it would run alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Iterator, NamedTuple

import torch
from torch import Tensor

CSRC = Path(__file__).resolve().parent / "csrc"
SOURCE = CSRC / "kan_op.cpp"
INCLUDED = (CSRC / "uniform_kan.c", CSRC / "uniform_kan_body.h")
FLAGS = (
    "-std=c++20", "-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fPIC",
    "-shared",
)
LOCAL_NONE, LOCAL_FILL, LOCAL_READ = "none", "fill", "read"  # what a forward does with the per-sample buffer

_enabled = os.environ.get("KAN_NATIVE", "1") != "0"


@contextlib.contextmanager
def use_native(enabled: bool) -> Iterator[None]:
    """Switch the compiled kernel on or off inside the block (for cross-checks and benchmarks)."""
    global _enabled
    previous, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = previous


def _cache_dir() -> Path:
    configured = os.environ.get("KAN_NATIVE_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kan-repro"


def _cpu_signature() -> str:
    """Model and feature flags of this CPU (``-march=native`` code is only valid on such CPUs)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return "\n".join(sorted({line for line in lines if line.startswith(("model name", "flags"))}))


def _torch_flags() -> list[str]:
    """Include paths, ABI and libraries of the installed torch (no Python headers needed)."""
    root = Path(torch.__file__).resolve().parent
    lib = root / "lib"
    return [
        f"-I{root / 'include'}", f"-I{root / 'include' / 'torch' / 'csrc' / 'api' / 'include'}",
        f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
        f"-L{lib}", "-lc10", "-ltorch_cpu", "-ltorch", f"-Wl,-rpath,{lib}",
    ]


def cache_key(compiler: str, version: str) -> str:
    """The built library's key: sources, compiler and its version, flags (torch's included), machine,
    CPU and torch version."""
    sources = [path.read_text() for path in (SOURCE, *INCLUDED)]
    parts = [*sources, compiler, version, *FLAGS, *_torch_flags(), platform.machine(), _cpu_signature(),
             torch.__version__]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _build(compiler: str) -> Path:
    """Compile the library into the cache (atomically: concurrent first builds are safe)."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    target = _cache_dir() / f"kan_op-{cache_key(compiler, version)}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        command = [compiler, *FLAGS, "-o", str(built), str(SOURCE), *_torch_flags()]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {done.stderr.strip()[-500:]}")
        os.replace(built, target)
    return target


class Limits(NamedTuple):
    """What the loaded kernel handles."""

    max_order: int
    activations: frozenset[str]


_limits: Limits | None = None  # of the loaded kernel; None: unavailable
_load_tried = False


def _load() -> Limits | None:
    """Builds (or finds) and loads the operators; warns if it cannot."""
    compiler = shutil.which(os.environ.get("CXX", "c++"))
    try:
        if compiler is None:
            raise RuntimeError("no C++ compiler found (set CXX)")
        torch.ops.load_library(str(_build(compiler)))
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        warnings.warn(f"kan: compiled layer kernel unavailable ({error}); using the plain ops", stacklevel=4)
        return None
    return Limits(torch.ops.kan.max_order(), frozenset(torch.ops.kan.activations()))


def _loaded() -> Limits | None:
    """:func:`_load`'s result, loading once per process (plain globals: torch.compile traces this)."""
    global _limits, _load_tried
    if not _load_tried:
        _limits, _load_tried = _load(), True
    return _limits


def available() -> bool:
    """Whether the compiled kernel is switched on and built (builds it on the first call)."""
    return _enabled and _loaded() is not None


def max_order() -> int:
    """The largest spline order the kernel handles (0 when it is off or unavailable)."""
    return _limits.max_order if available() else 0


def serves(weights: Tensor, order: int, activation: str) -> bool:
    """Whether the kernel is available and runs a layer whose parameters are ``weights`` (on the
    CPU, float32 or float64) with splines of ``order`` and this base activation."""
    return (
        weights.is_cpu and weights.dtype in (torch.float32, torch.float64) and available()
        and order <= _limits.max_order and activation in _limits.activations
    )


def supports(x: Tensor, weight_dtype: torch.dtype, order: int, activation: str) -> bool:
    """Whether the kernel is available and can run a layer with weights of ``weight_dtype`` on ``x``."""
    return x.dtype == weight_dtype and serves(x, order, activation)


Constants = tuple[Tensor, Tensor, Tensor, Tensor | None]


def layer(
    x: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor, mask: Tensor | None, constants: Constants,
    activation: str,
) -> Tensor:
    """The differentiable layer output ``[batch, out]`` (``torch.ops.kan.layer``; differentiable once,
    traceable by ``torch.compile``); arguments as for :class:`LayerCall`."""
    return torch.ops.kan.layer.default(x, coef, scale_base, scale_spline, mask, *constants, activation)


class LayerCall:
    """The kernel's forward and backward of one layer on batches of one size. ``constants`` are
    float64 CPU tensors: scale and shift ``[in]``, the local polynomial matrix ``[2(k+1), k+1]`` and
    the knots ``[in, G + 2k + 1]`` of a non-uniform grid (None: uniform grids, with scale and shift
    placing samples on them; with knots, scale is ones). Every tensor passed is contiguous, on the
    CPU and of the layer's dtype; the operators check this."""

    __slots__ = ("constants", "activation", "local_size", "keeps_local", "_forward", "_backward")

    def __init__(self, batch: int, activation: str, constants: Constants) -> None:
        scale, _, poly, _ = constants
        self.constants, self.activation = constants, activation
        self.local_size = torch.ops.kan.local_size(batch, scale.numel(), poly.shape[1] - 1)  # doubles
        self.keeps_local = 8 * self.local_size <= torch.ops.kan.local_bytes_kept()  # the kernel's own limit
        self._forward, self._backward = torch.ops.kan.layer_forward.default, torch.ops.kan.layer_backward.default

    def local_buffer(self) -> Tensor:
        """An empty per-sample buffer (float64; see the C source's header): the forward fills it,
        the backward and later forwards on the same input read it."""
        return torch.empty(self.local_size, dtype=torch.float64)

    def forward(
        self, x: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor, mask: Tensor | None,
        local: Tensor | None = None, mode: str = LOCAL_NONE, slopes: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Layer output ``[batch, out]`` and the packed weights the backward reads. ``mask``
        (``[in, out]``, None: all edges numeric) multiplies both branches. ``local`` (from
        :meth:`local_buffer`) is filled (``LOCAL_FILL``, with the basis slopes if ``slopes``) or
        read (``LOCAL_READ``); the kernel ignores ``mode`` without a buffer."""
        return self._forward(x, coef, scale_base, scale_spline, mask, *self.constants, self.activation, local, mode,
                             slopes)

    def backward(
        self, x: Tensor, coef: Tensor, scale_spline: Tensor, mask: Tensor | None, packed: Tensor, grad_out: Tensor,
        input_grad: bool, local: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
        """Gradients of (x or None, coef, scale_base, scale_spline) for ``grad_out`` ``[batch, out]``;
        sums over the batch run in float64. ``local``: the buffer the forward filled (with slopes if
        ``input_grad``), or None to recompute."""
        return self._backward(x, coef, scale_spline, mask, packed, grad_out, *self.constants, self.activation,
                              input_grad, local)
