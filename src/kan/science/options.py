"""Settings of a science experiment (a YAML mapping) as instances of its option dataclasses.

Every key must be a field of exactly one of the experiment's dataclasses; an unknown key is a
ValueError naming the key and the experiment. YAML lists become tuples (the dataclasses are frozen).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, ClassVar, Mapping, Sequence


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
            built.append(cls(**{k: freeze(v) for k, v in settings.items() if k in names}))
        except (TypeError, ValueError) as error:
            raise ValueError(f"bad option value for science experiment '{experiment}': {error}") from None
    return tuple(built)


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
