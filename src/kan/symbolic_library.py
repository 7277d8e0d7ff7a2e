"""The library of candidate functions for symbolic snapping: torch and sympy twins.

Each entry pairs a torch function (safe on the whole real line, for training) with the
sympy function it stands for (for formula export) and a complexity used to rank fits.

The constant ``"0"`` is in :data:`LIBRARY` (an edge can be cut by name) but not in
:func:`default_library`, the functions snapping chooses from unless told otherwise: the ranking
trades four bits of accuracy for one unit of complexity, so a ``"0"`` of complexity 0 would beat
any fit of a live edge short of R² ≈ 0.996.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Callable

import torch
from torch import Tensor

if TYPE_CHECKING:
    import sympy

_TINY = 1e-6


@dataclass(frozen=True)
class SymbolicFunction:
    """One candidate: ``torch_fn`` on tensors, ``sympy_fn`` on expressions, a complexity, and for
    a function defined on part of the line only, ``domain``: True where ``torch_fn`` computes
    ``sympy_fn`` (elsewhere it clamps its argument to stay finite, and a formula would not be the model)."""

    name: str
    torch_fn: Callable[[Tensor], Tensor]
    sympy_fn: Callable[[sympy.Expr], sympy.Expr]
    complexity: int
    domain: Callable[[Tensor], Tensor] | None = None


def _sympy() -> ModuleType:
    """The sympy module, imported on first use: only formula export needs it, so a training job
    that never exports a formula does not pay its import."""
    import sympy

    return sympy


def _safe_reciprocal(x: Tensor) -> Tensor:
    return 1 / torch.where(x.abs() < _TINY, torch.full_like(x, _TINY) * torch.where(x < 0, -1.0, 1.0), x)


def _away_from_zero(x: Tensor) -> Tensor:
    return x.abs() >= _TINY


def _positive(x: Tensor) -> Tensor:
    return x >= _TINY


def _inside_unit(x: Tensor) -> Tensor:
    return x.abs() <= 1 - _TINY


_DEFAULTS = [
    SymbolicFunction("0", torch.zeros_like, lambda x: _sympy().Integer(0), 0),
    SymbolicFunction("x", lambda x: x, lambda x: x, 1),
    SymbolicFunction("x^2", lambda x: x**2, lambda x: x**2, 2),
    SymbolicFunction("x^3", lambda x: x**3, lambda x: x**3, 3),
    SymbolicFunction("x^4", lambda x: x**4, lambda x: x**4, 3),
    SymbolicFunction("1/x", _safe_reciprocal, lambda x: 1 / x, 2, _away_from_zero),
    SymbolicFunction("1/x^2", lambda x: _safe_reciprocal(x) ** 2, lambda x: 1 / x**2, 2, _away_from_zero),
    SymbolicFunction("sqrt", lambda x: torch.sqrt(x.clamp_min(_TINY)), lambda x: _sympy().sqrt(x), 2, _positive),
    SymbolicFunction("exp", torch.exp, lambda x: _sympy().exp(x), 2),
    SymbolicFunction("log", lambda x: torch.log(x.clamp_min(_TINY)), lambda x: _sympy().log(x), 2, _positive),
    SymbolicFunction("sin", torch.sin, lambda x: _sympy().sin(x), 2),
    SymbolicFunction("cos", torch.cos, lambda x: _sympy().cos(x), 2),
    SymbolicFunction("tan", torch.tan, lambda x: _sympy().tan(x), 3),
    SymbolicFunction("tanh", torch.tanh, lambda x: _sympy().tanh(x), 3),
    SymbolicFunction("abs", torch.abs, lambda x: _sympy().Abs(x), 3),
    SymbolicFunction("sgn", torch.sign, lambda x: _sympy().sign(x), 3),
    SymbolicFunction("arcsin", lambda x: torch.asin(x.clamp(-1 + _TINY, 1 - _TINY)), lambda x: _sympy().asin(x), 4,
                     _inside_unit),
    SymbolicFunction("arctan", torch.atan, lambda x: _sympy().atan(x), 4),
    SymbolicFunction("arctanh", lambda x: torch.atanh(x.clamp(-1 + _TINY, 1 - _TINY)), lambda x: _sympy().atanh(x), 4,
                     _inside_unit),
    SymbolicFunction("gaussian", lambda x: torch.exp(-(x**2)), lambda x: _sympy().exp(-(x**2)), 3),
    SymbolicFunction("sigmoid", torch.sigmoid, lambda x: 1 / (1 + _sympy().exp(-x)), 4),
    SymbolicFunction("cosh", torch.cosh, lambda x: _sympy().cosh(x), 4),
]

ZERO = "0"
LIBRARY: dict[str, SymbolicFunction] = {f.name: f for f in _DEFAULTS}


def default_library() -> tuple[str, ...]:
    """Names snapping chooses from by default: every registered function except ``"0"``."""
    return tuple(name for name in LIBRARY if name != ZERO)


def register_function(
    name: str,
    torch_fn: Callable[[Tensor], Tensor],
    sympy_fn: Callable[[sympy.Expr], sympy.Expr],
    complexity: int = 3,
    domain: Callable[[Tensor], Tensor] | None = None,
) -> SymbolicFunction:
    """Add a user function to the library (names must be unique); ``domain``, for a function that
    clamps its argument, is True where it does not (:class:`SymbolicFunction`). A model that snaps
    an edge to it is saved with its name only: register the function again before loading such a model."""
    if name in LIBRARY:
        raise ValueError(f"symbolic function {name!r} is already registered")
    if not (callable(torch_fn) and callable(sympy_fn)):
        raise TypeError(f"register_function({name!r}) needs a torch function and a sympy function, both callable")
    if isinstance(complexity, bool) or not isinstance(complexity, numbers.Real) or not complexity >= 0:
        raise ValueError(f"complexity must be a number >= 0 (the default functions use 1-4), got {complexity!r}")
    if domain is not None and not callable(domain):
        raise TypeError(f"register_function({name!r}): domain must be callable (a tensor -> a boolean tensor)")
    entry = SymbolicFunction(name, torch_fn, sympy_fn, complexity, domain)
    LIBRARY[name] = entry
    return entry


def get_function(name: str) -> SymbolicFunction:
    """Look a function up by name, with a clear error listing the choices."""
    try:
        return LIBRARY[name]
    except KeyError:
        raise ValueError(f"unknown symbolic function {name!r}; known: {', '.join(LIBRARY)}") from None
