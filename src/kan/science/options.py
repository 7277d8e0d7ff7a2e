"""Settings of a science experiment (a YAML mapping) as instances of its option dataclasses.

Every key must be a field of exactly one of the experiment's dataclasses; an unknown key is a
ValueError naming the key and the experiment. YAML lists become tuples (the dataclasses are frozen).
Integer options (also inside tuples and mappings) and named choices (a dtype, an activation)
are checked by name (:func:`check_integers`, :func:`check_choices`), float options by type and
name (:func:`check_floats`); no list option may be empty.
"""

from __future__ import annotations

import math
import re
import typing
from dataclasses import asdict, fields
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

from kan.layers import BASE_ACTIVATIONS, DTYPE_NAMES
from kan.models import MLP_ACTIVATIONS

# Integer options that count or size something must be >= 1: steps, samples, rows, sizes, widths, grids,
# ...; every other integer option (seeds, digits) must be >= 0. An option class lists exceptions (an
# optional phase, 0 = skip it) in its ``ZERO_ALLOWED``.
COUNT_NAME = re.compile(r"^(n|num)_|steps|(samples|rows|restarts|rounds|every|size|grids?|order|widths?|factors)$")
# Float options are >= 0 (weights, penalties, thresholds); rates, widths, tolerances and factors must be
# > 0, and shares (a fraction, an accuracy) lie in [0, 1].
POSITIVE_NAME = re.compile(r"(^|_)(lr|width|tol|factor)$")
SHARE_NAME = re.compile(r"(fraction|accuracy)$")
# Options that name one of a fixed set, by the end of the option's name (``dtype``, ``mlp_activation``, ...).
CHOICES = {"dtype": DTYPE_NAMES, "mlp_activation": tuple(MLP_ACTIVATIONS), "base_activation": tuple(BASE_ACTIVATIONS)}


def freeze(value: Any) -> Any:
    """Lists (also nested, also inside mappings) as tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return {k: freeze(v) for k, v in value.items()}
    return value


def option_names(classes: Sequence[type]) -> list[str]:
    """Every setting the dataclasses accept, in declaration order."""
    return [f.name for cls in classes for f in fields(cls)]


def build_options(experiment: str, classes: Sequence[type], settings: Mapping[str, Any]) -> tuple[Any, ...]:
    """One instance per class, each built from the settings named by its fields."""
    valid = option_names(classes)
    unknown = [key for key in settings if key not in valid]
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for science experiment '{experiment}'; "
                         f"valid options: {', '.join(valid)}")
    built = []
    for cls in classes:
        names = {f.name for f in fields(cls)}
        try:
            options = cls(**{k: freeze(v) for k, v in settings.items() if k in names})
            built.append(check_choices(check_floats(check_integers(check_not_empty(options)))))
        except (TypeError, ValueError) as error:
            raise ValueError(f"bad option value for science experiment '{experiment}': {error}") from None
    return tuple(built)


def _holds(kind: type, hint: Any) -> bool:
    """Whether a field's type is ``kind`` or built from it (``int | None``, ``tuple[float, ...]``, ...)."""
    return hint is kind or any(_holds(kind, arg) for arg in typing.get_args(hint))


def _leaves(value: Any) -> Iterator[Any]:
    """The values inside tuples and mappings (their values), ``None`` left out."""
    if isinstance(value, (tuple, Mapping)):
        for item in value.values() if isinstance(value, Mapping) else value:
            yield from _leaves(item)
    elif value is not None:
        yield value


def _require_each(name: str, value: Any, valid: Callable[[Any], bool], one: str, many: str, bound: str) -> None:
    """ValueError naming option ``name`` unless every value inside ``value`` is ``valid``; the message
    says what it must be (``one`` for a single value, ``many`` for a tuple or mapping) and its bound."""
    if not all(valid(v) for v in _leaves(value)):
        what = many if isinstance(value, (tuple, Mapping)) else one
        raise ValueError(f"{name} must {what} {bound}, got {value!r}")


def check_integers(options: Any) -> Any:
    """``options`` (an option dataclass instance) after checking its integer options: every value is
    an integer, >= 1 where the name counts something (:data:`COUNT_NAME`), else >= 0; ValueError naming
    the first bad option."""
    hints = typing.get_type_hints(type(options))
    zero_allowed = getattr(options, "ZERO_ALLOWED", frozenset())
    for field in fields(options):
        if not _holds(int, hints[field.name]):
            continue
        least = 1 if COUNT_NAME.search(field.name) and field.name not in zero_allowed else 0
        _require_each(field.name, getattr(options, field.name),
                      lambda v: not isinstance(v, bool) and isinstance(v, int) and v >= least,
                      "be an integer", "hold integers", f">= {least}")
    return options


def float_bounds(name: str) -> tuple[str, Callable[[float], bool]]:
    """The range a float option named ``name`` must lie in, as text and as a test."""
    if POSITIVE_NAME.search(name):
        return "> 0", lambda v: v > 0
    if SHARE_NAME.search(name):
        return "in [0, 1]", lambda v: 0 <= v <= 1
    return ">= 0", lambda v: v >= 0


def check_floats(options: Any) -> Any:
    """``options`` after checking its float options (also inside tuples and mappings): every value is
    a finite number in the range its name implies (:func:`float_bounds`); ValueError naming the first
    bad option (a quoted "1e-3" or a negative learning rate used to fail mid-run, or not at all)."""
    hints = typing.get_type_hints(type(options))
    for field in fields(options):
        if _holds(int, hints[field.name]) or not _holds(float, hints[field.name]):
            continue
        bound, within = float_bounds(field.name)
        _require_each(field.name, getattr(options, field.name),
                      lambda v: not isinstance(v, bool) and isinstance(v, (int, float))
                      and math.isfinite(v) and within(v),
                      "be a finite number", "hold finite numbers", bound)
    return options


def check_not_empty(options: Any) -> Any:
    """``options`` after checking that no list option (a tuple) is empty: an experiment with no
    seeds, grids or widths has nothing to run; ValueError naming the first empty one."""
    for field in fields(options):
        if getattr(options, field.name) == ():
            raise ValueError(f"{field.name} must not be empty")
    return options


def resolved(instances: Sequence[Any]) -> dict[str, Any]:
    """Every option with its value (defaults filled in), as one mapping."""
    values: dict[str, Any] = {}
    for instance in instances:
        values.update(asdict(instance))
    return values


class MappingOptions:
    """Base of an experiment's own option dataclass, which sets ``EXPERIMENT`` (the name errors use)."""

    EXPERIMENT: ClassVar[str]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Any:
        """Build from a (YAML) mapping; lists become tuples, an unknown key is a ValueError naming it."""
        (options,) = build_options(cls.EXPERIMENT, (cls,), values)
        return options

    @classmethod
    def coerce(cls, options: Any) -> Any:
        """``options`` itself when it already is an instance, else built from a mapping (None: defaults)."""
        return options if isinstance(options, cls) else cls.from_dict(options or {})


def check_choices(options: Any) -> Any:
    """``options`` after checking the options that name one of a fixed set (:data:`CHOICES`, by the
    end of the option's name); ValueError naming the first bad option and the choices."""
    for field in fields(options):
        value = getattr(options, field.name)
        for suffix, allowed in CHOICES.items():
            if (field.name == suffix or field.name.endswith(f"_{suffix}")) and value not in allowed:
                raise ValueError(f"{field.name} must be one of {', '.join(allowed)}, got {value!r}")
    return options
