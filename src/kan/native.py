"""Optional compiled kernel for KAN layers on per-input knot grids, uniform or not (CPU, float32/float64).

The C source (``csrc/uniform_kan.c``) is built with the system C compiler on first use and
cached under ``$KAN_NATIVE_CACHE`` (default ``~/.cache/kan-repro``), keyed by source, compiler,
flags and CPU. Without a compiler, or with ``KAN_NATIVE=0``, layers use the PyTorch path (on
non-uniform grids the plain Cox-de Boor ops); the two agree to rounding. Small layers gain most: one C call replaces dozens of tensor operations.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

SOURCE = Path(__file__).resolve().parent / "csrc" / "uniform_kan.c"
HEADERS = (SOURCE.with_name("uniform_kan_body.h"),)
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared")
LOCAL_NONE, LOCAL_FILL, LOCAL_READ = 0, 1, 2  # what a forward does with the per-sample buffer
ACTIVATIONS = {"silu": 0, "identity": 1, "zero": 2}
_SUFFIXES = {torch.float64: "f64", torch.float32: "f32"}

_enabled = os.environ.get("KAN_NATIVE", "1") != "0"


_C_FIELDS = ("batch", "n_in", "n_out", "num_basis", "order", "activation", "scale", "shift", "poly", "knots")  # kan_shape_layout's order


class Shape(ctypes.Structure):
    """``kan_shape`` of the C source; checked against the built library's own layout on load."""

    _fields_ = [
        ("batch", ctypes.c_long), ("n_in", ctypes.c_long), ("n_out", ctypes.c_long), ("num_basis", ctypes.c_long),
        ("order", ctypes.c_int), ("activation", ctypes.c_int),
        ("scale", ctypes.c_void_p), ("shift", ctypes.c_void_p), ("poly", ctypes.c_void_p), ("knots", ctypes.c_void_p),
    ]


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


def _build(compiler: str) -> Path:
    """Compile the source into the cache (atomically: concurrent first builds are safe)."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    sources = [path.read_text() for path in (SOURCE, *HEADERS)]
    parts = [*sources, compiler, version, *FLAGS, platform.machine(), _cpu_signature()]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    target = _cache_dir() / f"uniform_kan-{key}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        done = subprocess.run([compiler, *FLAGS, "-o", str(built), str(SOURCE), "-lm"], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {done.stderr.strip()[-500:]}")
        os.replace(built, target)
    return target


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    compiler = shutil.which(os.environ.get("CC", "cc"))
    try:
        if compiler is None:
            raise RuntimeError("no C compiler found (set CC)")
        library = ctypes.CDLL(str(_build(compiler)))
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        warnings.warn(f"kan: compiled layer kernel unavailable ({error}); using the PyTorch path", stacklevel=3)
        return None
    pointer, shape = ctypes.c_void_p, ctypes.POINTER(Shape)
    for suffix in _SUFFIXES.values():
        forward, backward = getattr(library, f"kan_layer_forward_{suffix}"), getattr(library, f"kan_layer_backward_{suffix}")
        forward.restype, backward.restype = None, ctypes.c_int
        forward.argtypes = [shape, *[pointer] * 8, ctypes.c_int, ctypes.c_int]
        backward.argtypes = [shape, *[pointer] * 11]
    library.kan_max_order.restype = ctypes.c_int
    for sizes in (library.kan_packed_size, library.kan_local_size):
        sizes.restype, sizes.argtypes = ctypes.c_long, [shape]
    mismatch = layout_mismatch(library)
    if mismatch:
        warnings.warn(f"kan: compiled layer kernel not used, {mismatch}; using the PyTorch path", stacklevel=3)
        return None
    return library


def layout_mismatch(library: ctypes.CDLL) -> str:
    """How :class:`Shape` differs from the library's ``kan_shape`` (size, then field offsets); "" if not."""
    found = (ctypes.c_long * (1 + len(_C_FIELDS)))()
    library.kan_shape_layout(found)
    ours = {name: getattr(Shape, name, None) for name in _C_FIELDS}
    expected = [ctypes.sizeof(Shape), *(-1 if field is None else field.offset for field in ours.values())]
    names = ["size", *_C_FIELDS]
    wrong = [f"{name} {mine} here, {theirs} in C" for name, mine, theirs in zip(names, expected, found) if mine != theirs]
    return "its kan_shape layout differs from kan.native.Shape: " + ", ".join(wrong) if wrong else ""


def max_order() -> int:
    """The largest spline order the kernel handles (0 when it is off or unavailable)."""
    return _built_max_order() if available() else 0


@functools.lru_cache(maxsize=1)
def _built_max_order() -> int:
    return _library().kan_max_order()


def available() -> bool:
    """Whether the compiled kernel is switched on and built (builds it on the first call)."""
    return _enabled and _library() is not None


def serves(weights: Tensor, order: int, activation: str) -> bool:
    """Whether the kernel is available and runs a layer whose parameters are ``weights`` (on the
    CPU, float32 or float64) with splines of ``order`` and this base activation."""
    return (
        weights.is_cpu and weights.dtype in _SUFFIXES and activation in ACTIVATIONS and available()
        and order <= max_order()
    )


def supports(x: Tensor, weight_dtype: torch.dtype, order: int, activation: str) -> bool:
    """Whether the kernel is available and can run a layer with weights of ``weight_dtype`` on ``x``."""
    return x.dtype == weight_dtype and serves(x, order, activation)


class LayerCall:
    """The kernel's forward and backward of one layer shape on batches of one size and dtype.
    ``constants`` are float64 CPU tensors that must outlive the call: scale and shift ``[in]``, the
    local polynomial matrix ``[2(k+1), k+1]`` and the knots ``[in, G + 2k + 1]`` of a non-uniform
    grid (None: uniform grids, with scale and shift placing samples on them; with knots, scale is
    ones); every tensor passed is contiguous, on the CPU and of ``dtype``."""

    __slots__ = ("shape", "packed_size", "local_size", "_forward", "_backward")

    def __init__(
        self, batch: int, n_out: int, num_basis: int, order: int, activation: str,
        constants: tuple[Tensor, Tensor, Tensor, Tensor | None],
        dtype: torch.dtype,
    ) -> None:
        scale, shift, poly, knots = constants
        self.shape = Shape(batch, scale.numel(), n_out, num_basis, order, ACTIVATIONS[activation],
                           scale.data_ptr(), shift.data_ptr(), poly.data_ptr(), _pointer(knots))
        library, suffix = _library(), _SUFFIXES[dtype]
        self.packed_size = library.kan_packed_size(ctypes.byref(self.shape))
        self.local_size = library.kan_local_size(ctypes.byref(self.shape))  # doubles
        self._forward = getattr(library, f"kan_layer_forward_{suffix}")
        self._backward = getattr(library, f"kan_layer_backward_{suffix}")

    @property
    def local_bytes(self) -> int:
        """Size of :meth:`local_buffer`."""
        return 8 * self.local_size

    def local_buffer(self) -> Tensor:
        """An empty per-sample buffer (float64; see the C source's header): the forward fills it,
        the backward and later forwards on the same input read it."""
        return torch.empty(self.local_size, dtype=torch.float64)

    def forward(
        self, x: Tensor, coef: Tensor, scale_base: Tensor, scale_spline: Tensor, mask: Tensor | None,
        local: Tensor | None = None, mode: int = LOCAL_NONE, slopes: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Layer output ``[batch, out]`` and the packed weights the backward reads. ``mask``
        (``[in, out]``, None: all edges numeric) multiplies both branches. ``local`` (from
        :meth:`local_buffer`) is filled (``LOCAL_FILL``, with the basis slopes if ``slopes``) or
        read (``LOCAL_READ``); the kernel ignores ``mode`` without a buffer."""
        packed = x.new_empty(self.packed_size)
        out = x.new_empty(self.shape.batch, self.shape.n_out)
        self._forward(
            self.shape, x.data_ptr(), coef.data_ptr(), scale_base.data_ptr(), scale_spline.data_ptr(), _pointer(mask),
            packed.data_ptr(), out.data_ptr(), _pointer(local), mode, slopes,
        )
        return out, packed

    def backward(
        self, x: Tensor, coef: Tensor, scale_spline: Tensor, mask: Tensor | None, packed: Tensor, grad_out: Tensor,
        input_grad: bool, local: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
        """Gradients of (x or None, coef, scale_base, scale_spline) for ``grad_out`` ``[batch, out]``;
        sums over the batch run in float64. ``local``: the buffer the forward filled (with slopes if
        ``input_grad``), or None to recompute."""
        grad_out = grad_out.contiguous()  # a name keeps it alive during the call
        grad_x = torch.empty_like(x) if input_grad else None
        grad_coef, grad_base, grad_spline = torch.empty_like(coef), torch.empty_like(scale_spline), torch.empty_like(scale_spline)
        status = self._backward(
            self.shape, x.data_ptr(), coef.data_ptr(), scale_spline.data_ptr(), _pointer(mask), packed.data_ptr(),
            grad_out.data_ptr(), grad_coef.data_ptr(), grad_base.data_ptr(), grad_spline.data_ptr(), _pointer(grad_x),
            _pointer(local),
        )
        if status != 0:
            raise MemoryError("kan.native: no memory for the layer gradient")
        return grad_x, grad_coef, grad_base, grad_spline


def _pointer(tensor: Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()
