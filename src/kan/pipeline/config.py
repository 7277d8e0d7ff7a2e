"""Pipeline configuration: schema validation with defaults, then checks the schema cannot
express (task names, dataset specs, training options). Every problem is reported with the
config path it belongs to, before any job starts.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Iterator, Mapping

import jsonschema
import yaml

from kan.data import FAMILIES, family_module, task_names
from kan.data.spec import merge_spec
from kan.experiments.sweep import data_spec, dataset_names
from kan.records.shards import parse_shard
from kan.science.registry import resolve_settings
from kan.train import TrainConfig, TrainConfigError


class ConfigError(ValueError):
    """An invalid pipeline configuration; the message names every offending key."""


def load_yaml(path: Path | str) -> dict[str, Any]:
    """Read a YAML mapping from ``path``."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _with_defaults(validator_class: type) -> type:
    """A validator class that also fills ``default`` values of absent properties."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator: Any, props: Mapping, instance: Any, schema: Mapping) -> Iterator:
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


def _non_finite(value: Any, path: tuple[Any, ...] = ()) -> Iterator[str]:
    """Paths (dotted) of the NaN and infinite numbers anywhere in ``value``, each with its value."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _non_finite(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _non_finite(item, (*path, index))
    elif isinstance(value, float) and not math.isfinite(value):
        yield f"at {'.'.join(map(str, path))}: {value} is not a finite number"


def _report(problems: list[str]) -> None:
    """ConfigError listing ``problems`` (each names its config path), if there are any."""
    if problems:
        raise ConfigError("invalid pipeline config:\n" + "\n".join(f"  {p}" for p in problems))


def check_finite(config: Mapping[str, Any]) -> None:
    """ConfigError naming every NaN or infinite number (checked before everything else)."""
    _report(list(_non_finite(config)))


def _empty_mappings(value: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of the empty mappings nested in ``value``."""
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            yield from _empty_mappings(item, (*path, key))
        elif isinstance(item, Mapping):
            yield (*path, key)


def _at(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested mappings; None where there is none."""
    value: Any = config
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def check_overrides(merged: Mapping[str, Any], sources: list[Mapping[str, Any]]) -> None:
    """ConfigError for an empty mapping in one of ``sources`` (each ``--configfile``, then ``--config``)
    where the ``merged`` config is not empty there: Snakemake merges them into the workflow's config
    key by key, so an empty mapping removes nothing (``--config experiments={}`` kept the default sweep)."""
    problems = []
    for source in sources:
        for path in _empty_mappings(source):
            if kept := _at(merged, path):
                problems.append(f"at {'.'.join(path)}: an empty mapping removes nothing (Snakemake merges --config and "
                                f"--configfile key by key, so {', '.join(map(str, kept))} stay): give the keys "
                                "wanted, or start from no workflow config with --replace-workflow-config")
    _report(problems)


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def validate_schema(config: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Fill schema defaults into a copy of ``config`` and validate it; ConfigError lists problems."""
    config = copy.deepcopy(config)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    _report([f"at {_where(e)}: {e.message}" for e in errors])
    return config


def _check_experiment(config: Mapping[str, Any], key: str, experiment: Mapping[str, Any]) -> list[str]:
    problems = []
    family = experiment["family"]
    known = task_names(family)
    for name in [n for n in dataset_names(experiment) if n not in known]:
        problems.append(f"experiments.{key}.datasets: unknown {family} task '{name}'; valid: {', '.join(known)}")
    kan, mlp = experiment["kan"], experiment["mlp"]
    for part, block in (("kan", kan), ("mlp", mlp)):
        if bool(block["widths"]) != bool(block["depths"]):
            problems.append(f"experiments.{key}.{part}: give both widths and depths (or neither)")
    if kan["prune"]["lambdas"] and not kan["widths"]:
        problems.append(f"experiments.{key}.kan.prune: pruning needs kan.widths and kan.depths")
    if not (kan["paper_shape"] or kan["widths"] or mlp["widths"]):
        problems.append(f"experiments.{key}: no models (set kan.paper_shape, kan.widths/depths or mlp.widths/depths)")
    if kan["paper_shape"]:
        for name in [n for n in dataset_names(experiment) if n in known]:
            if getattr(family_module(family).TASKS[name], "shape", None) is None:
                problems.append(f"experiments.{key}.kan.paper_shape: {family}/{name} has no paper shape")
    try:
        TrainConfig.from_dict(experiment["train"])
    except TrainConfigError as error:
        problems += [f"experiments.{key}.train.{name}: {what}" for name, what in error.problems.items()]
    except ValueError as error:
        problems.append(f"experiments.{key}.train: {error}")
    return problems


def _check_specs(config: Mapping[str, Any]) -> list[str]:
    problems = []
    for key in config["datasets"]["specs"]:
        family, _, name = key.partition("/")
        if family not in FAMILIES:
            problems.append(f"datasets.specs.{key}: unknown family '{family}'; valid: {', '.join(FAMILIES)}")
        elif name and name not in task_names(family):
            problems.append(f"datasets.specs.{key}: unknown {family} task '{name}'")
    if problems:
        return problems
    used = {(e["family"], n) for e in config["experiments"].values() for n in dataset_names(e) if n in task_names(e["family"])}
    for family, name in sorted(used):
        task = family_module(family).TASKS[name]
        if hasattr(task, "defaults"):
            try:
                merge_spec(task.defaults(), data_spec(config, family, name), where=f"{family}/{name}")
            except ValueError as error:
                problems.append(f"datasets.specs: {error}")
    return problems


def _check_science(config: Mapping[str, Any]) -> list[str]:
    """Every science experiment's settings against its option dataclasses (kan.science.registry)."""
    if not config["science"]:
        return []
    problems = []
    for name, settings in config["science"].items():
        try:
            resolve_settings(name, settings)
        except ValueError as error:
            problems.append(f"science.{name}: {error}")
    return problems


def _check_shard(config: Mapping[str, Any]) -> list[str]:
    if config.get("shard") is None:
        return []
    try:
        parse_shard(config["shard"])
    except ValueError as error:
        return [f"at shard: {error}"]
    return []


def check_semantics(config: Mapping[str, Any]) -> None:
    """Checks beyond the schema; ConfigError lists every problem with its config path."""
    problems = _check_specs(config) + _check_science(config) + _check_shard(config)
    for key, experiment in config["experiments"].items():
        problems += _check_experiment(config, key, experiment)
    _report(problems)


def load_config(config: Mapping[str, Any] | Path | str, schema_path: Path | str) -> dict[str, Any]:
    """Validate a config (mapping or YAML path) against the schema and the semantic checks;
    return it with defaults filled in."""
    raw = load_yaml(config) if isinstance(config, (str, Path)) else dict(config)
    check_finite(raw)
    validated = validate_schema(raw, load_yaml(schema_path))
    check_semantics(validated)
    return validated
