"""Pipeline configuration: schema validation with defaults, then checks the schema cannot
express (task names, dataset specs and the data they make, training options and losses, science
settings, the report's curated miss causes). Every problem is reported with the config path it
belongs to, before any job starts.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Iterator, Mapping

import jsonschema
import numpy as np
import yaml

from kan.data import FAMILIES, family_module, generate, task_names
from kan.data.io import validate_data
from kan.data.spec import merge_spec
from kan.experiments.sweep import data_spec, dataset_names
from kan.records.publish import RUNS
from kan.records.shards import parse_shards
from kan.reporting.compare import check_causes
from kan.reporting.fidelity import Causes
from kan.reporting.reference import load_reference
from kan.science.registry import resolve_settings
from kan.train import TrainConfig, TrainConfigError

REFERENCE = Path("reports") / "reference" / "paper.yaml"  # the paper's numbers, from the repository root
CLASSIFICATION_FAMILIES = ("knot", "anderson")  # their data label classes; the other families' are real-valued
LOSSES = {"regression": "mse", "classification": "cross_entropy"}  # the loss each kind of data trains with


class ConfigError(ValueError):
    """An invalid pipeline configuration; the message names every offending key."""


def load_yaml(path: Path | str) -> dict[str, Any]:
    """Read a YAML mapping from ``path``."""
    with open(path, encoding="utf-8") as handle:
        try:
            data = yaml.safe_load(handle) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _is_integer(checker: Any, instance: Any) -> bool:
    """An int, not a float with an integral value: JSON Schema accepts 4.0 as an integer, but
    Python would pass the float on (a chunk size it cannot range over, run ids that differ from
    the integer config's)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_STRICT_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)


def _with_defaults(validator_class: type) -> type:
    """A validator class that also fills ``default`` values of absent properties."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator: Any, props: Mapping, instance: Any, schema: Mapping) -> Iterator:
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties}, type_checker=_STRICT_TYPES)


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
    key by key, so an empty mapping removes nothing (``--config experiments={}`` kept the default sweep).
    Also for a number or boolean written inside a mapping on the command line (the last source):
    Snakemake passes those as text, and the option's own check would only say it got a string."""
    problems = []
    for source in sources:
        for path in _empty_mappings(source):
            if kept := _at(merged, path):
                problems.append(f"at {'.'.join(path)}: an empty mapping removes nothing (Snakemake merges --config and "
                                f"--configfile key by key, so {', '.join(map(str, kept))} stay): give the keys "
                                "wanted, or start from no workflow config with --replace-workflow-config")
    problems += [f"at {'.'.join(map(str, path))}: {value!r} arrived as text (Snakemake's --config passes the values "
                 "inside a mapping as strings): give this setting in a file with --configfile"
                 for path, value in _leaves(sources[-1] if sources else {}) if len(path) > 1 and _looks_typed(value)]
    _report(problems)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, value) of every value nested in mappings and lists that is neither."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _looks_typed(value: Any) -> bool:
    """Whether ``value`` is text that YAML in a config file would read as a number or a boolean."""
    if not isinstance(value, str):
        return False
    if value.strip().lower() in ("true", "false"):
        return True
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def validate_schema(config: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Fill schema defaults into a copy of ``config`` and validate it; ConfigError lists problems."""
    config = copy.deepcopy(config)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    _report([f"at {_where(e)}: {_message(e)}" for e in errors])
    return config


def _message(error: jsonschema.ValidationError) -> str:
    """The error's message; for a value that fits none of several allowed forms, why it fits
    none of them (jsonschema says only 'is not valid under any of the given schemas'); for a
    string of the wrong form, the key's description instead of the regular expression."""
    if error.validator == "pattern" and "description" in error.schema:
        return f"{error.instance!r} is not of the expected form; {error.schema['description']}"
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return error.message
    reasons = dict.fromkeys(sub.message for sub in error.context)
    return f"{error.instance!r} fits none of the allowed forms: {'; or '.join(reasons)}"


def task_kind(family: str, name: str) -> str:
    """The kind of data (``kan.data.io.TASK_KINDS``) task ``name`` of ``family`` generates, read from
    its definition: classification for the knot and anderson families; otherwise regression, or
    unsupervised for a task without targets (``kan.data.sampling.tabulate``)."""
    if family in CLASSIFICATION_FAMILIES:
        return "classification"
    return "unsupervised" if getattr(family_module(family).TASKS[name], "target_names", None) == () else "regression"


def _tasks(family: str, names: list[str]) -> str:
    """``family/a is`` or ``family/a, family/b, family/c and 2 more are``."""
    shown = ", ".join(f"{family}/{name}" for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "") + (" is" if len(names) == 1 else " are")


def _check_kinds(key: str, experiment: Mapping[str, Any], names: list[str], loss: str | None) -> list[str]:
    """Every dataset's kind of data against the experiment's loss (``train.loss``, default mse): a
    mismatch otherwise fails inside the train job with a dtype error naming no config path."""
    family, problems = experiment["family"], []
    by_kind: dict[str, list[str]] = {}
    for name in names:
        by_kind.setdefault(task_kind(family, name), []).append(name)
    for kind, members in by_kind.items():
        if kind not in LOSSES:
            hint = "; list the tasks wanted instead of all" if experiment["datasets"] == "all" else ""
            problems.append(f"at experiments.{key}.datasets: {_tasks(family, members)} {kind} data (no target to "
                            f"fit): a training experiment fits data with targets{hint}")
        elif loss is not None and LOSSES[kind] != loss:
            loss_kind = next(k for k, v in LOSSES.items() if v == loss)
            problems.append(f"at experiments.{key}.train.loss: {loss} is a {loss_kind} loss, but "
                            f"{_tasks(family, members)} {kind} data: use {LOSSES[kind]}")
    return problems


def _check_experiment(config: Mapping[str, Any], key: str, experiment: Mapping[str, Any]) -> list[str]:
    problems = []
    family = experiment["family"]
    known = task_names(family)
    for name in [n for n in dataset_names(experiment) if n not in known]:
        problems.append(f"at experiments.{key}.datasets: unknown {family} task '{name}'; valid: {', '.join(known)}")
    kan, mlp = experiment["kan"], experiment["mlp"]
    for part, block in (("kan", kan), ("mlp", mlp)):
        if bool(block["widths"]) != bool(block["depths"]):
            problems.append(f"at experiments.{key}.{part}: give both widths and depths (or neither)")
        if 1 in block["depths"] and len(block["widths"]) > 1:  # each width would give the same model
            problems.append(f"at experiments.{key}.{part}.depths: depth 1 has no hidden layer, so its widths "
                            f"{block['widths']} would train the same model {len(block['widths'])} times; "
                            "give depth 1 in an experiment with one width")
    if kan["prune"]["lambdas"] and not kan["widths"]:
        problems.append(f"at experiments.{key}.kan.prune: pruning needs kan.widths and kan.depths")
    if not (kan["paper_shape"] or kan["widths"] or mlp["widths"]):
        problems.append(f"at experiments.{key}: no models (set kan.paper_shape, kan.widths/depths or mlp.widths/depths)")
    if kan["paper_shape"]:
        for name in [n for n in dataset_names(experiment) if n in known]:
            if getattr(family_module(family).TASKS[name], "shape", None) is None:
                problems.append(f"at experiments.{key}.kan.paper_shape: {family}/{name} has no paper shape")
    loss = None
    try:
        loss = TrainConfig.from_dict(experiment["train"]).loss
    except TrainConfigError as error:
        problems += [f"at experiments.{key}.train.{name}: {what}" for name, what in error.problems.items()]
    except ValueError as error:
        problems.append(f"at experiments.{key}.train: {error}")
    return problems + _check_kinds(key, experiment, [n for n in dataset_names(experiment) if n in known], loss)


def _check_domain(config: Mapping[str, Any], family: str, name: str, spec: Mapping[str, Any]) -> list[str]:
    """The dataset the data job will write for ``spec`` (whose ``ranges`` a config overrides), made in
    memory (same spec and seed: the same rows) and checked like the job checks it: ranges beyond the
    task's domain give NaN or infinite values."""
    key = f"{family}/{name}" if "ranges" in config["datasets"]["specs"].get(f"{family}/{name}", {}) else family
    try:
        with np.errstate(all="ignore"):  # the NaNs are reported below, by column
            validate_data(generate(family, name, dict(spec), config["datasets"]["seed"]))
    except ValueError as error:
        return [f"at datasets.specs.{key}.ranges: {error}"]
    return []


def _check_specs(config: Mapping[str, Any]) -> list[str]:
    problems = []
    used = {(e["family"], n) for e in config["experiments"].values() for n in dataset_names(e) if n in task_names(e["family"])}
    for key in config["datasets"]["specs"]:
        family, _, name = key.partition("/")
        if family not in FAMILIES:
            problems.append(f"at datasets.specs.{key}: unknown family '{family}'; valid: {', '.join(FAMILIES)}")
        elif name and name not in task_names(family):
            problems.append(f"at datasets.specs.{key}: unknown {family} task '{name}'")
        elif not any(f == family and name in ("", n) for f, n in used):
            problems.append(f"at datasets.specs.{key}: {_unused_spec(family, name)}")
    if problems:
        return problems
    for family, name in sorted(used):
        task, spec = family_module(family).TASKS[name], data_spec(config, family, name)
        if not callable(getattr(task, "defaults", None)):  # knot, anderson: the schema keeps them out of experiments
            continue
        try:
            merge_spec(task.defaults(), spec, where=f"{family}/{name}")
        except ValueError as error:
            problems.append(f"at datasets.specs: {error}")
            continue
        if "ranges" in spec:
            problems += _check_domain(config, family, name, spec)
    return problems


def _unused_spec(family: str, name: str) -> str:
    """Why a spec override for ``family`` (task ``name``, or all of them when empty) that no
    experiment trains on is refused: nothing would read it."""
    what = f"{family}/{name}" if name else f"{family} data"
    if family in ("knot", "anderson"):
        return (f"no experiment trains on {what}, so this override would be ignored: the science experiments "
                f"take their data settings from science.<name> (science.knots, science.localization)")
    return (f"no experiment trains on {what}, so this override would be ignored; remove it or add "
            f"{name or 'a ' + family + ' dataset'} to an experiment's datasets")


def _check_causes(config: Mapping[str, Any], reference: Path) -> list[str]:
    """The curated miss causes' keys against the numbers the report compares (the check the
    paper_vs_ours job makes, :func:`kan.reporting.compare.check_causes`, which covers the science
    numbers too)."""
    causes = config["report"]["miss_causes"]
    if not causes:
        return []
    try:
        numbers = load_reference(reference)
    except (OSError, ValueError) as error:
        return [f"at report.miss_causes: cannot check the keys against the paper's numbers: {error}"]
    try:
        check_causes(Causes(causes, reduced_budget=False), numbers)
    except ValueError as error:
        return [f"at report.miss_causes: {str(error).removeprefix('report.miss_causes: ')}"]
    return []


def _check_science(config: Mapping[str, Any]) -> list[str]:
    """Every science experiment's settings against its option dataclasses (kan.science.registry)."""
    if not config["science"]:
        return []
    problems = []
    for name, settings in config["science"].items():
        try:
            resolve_settings(name, settings)
        except ValueError as error:
            problems.append(f"at science.{name}: {error}")
    return problems


def _check_shard(config: Mapping[str, Any]) -> list[str]:
    if config.get("shard") is None:
        return []
    try:
        parse_shards(config["shard"])
    except ValueError as error:
        return [f"at shard: {error}"]
    return []


def _check_published(config: Mapping[str, Any]) -> list[str]:
    folder = config.get("published")
    if folder is None or (Path(folder) / RUNS).is_file():
        return []
    return [f"at published: {folder} holds no {RUNS} (give a folder of published records, e.g. reports/paper-run)"]


_TRACKING_SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "mysql", "mssql", "databricks")


def _check_tracking(config: Mapping[str, Any]) -> list[str]:
    """A tracking URI the store job can open: a known scheme, and a SQLite file as sqlite:///path
    (MLflow's own errors for these name neither the URI nor the config key)."""
    uri = config["tracking"]["uri"]
    if not uri:
        return []
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme not in _TRACKING_SCHEMES:
        return [f"at tracking.uri: {uri!r} is not a tracking URI: give <scheme>://..., the scheme one of "
                f"{', '.join(_TRACKING_SCHEMES)} (or leave it empty for results/mlflow.db)"]
    if scheme == "sqlite" and not rest.startswith("/"):
        return [f"at tracking.uri: {uri!r} names no file: a SQLite store is sqlite:///<path> (three slashes, "
                "then the path; four for an absolute path)"]
    return []


def check_semantics(config: Mapping[str, Any], reference: Path | str = REFERENCE) -> None:
    """Checks beyond the schema; ConfigError lists every problem with its config path. ``reference``:
    the paper's numbers, that ``report.miss_causes`` keys must name."""
    problems = (_check_specs(config) + _check_science(config) + _check_shard(config) + _check_published(config)
                + _check_tracking(config))
    for key, experiment in config["experiments"].items():
        problems += _check_experiment(config, key, experiment)
    _report(problems + _check_causes(config, Path(reference)))


def workflow_reference(schema_path: Path | str) -> Path:
    """The paper's numbers of the workflow a schema belongs to: ``<root>/workflow/schemas/<schema>``
    -> ``<root>/reports/reference/paper.yaml``, the file its report compares with (the Snakefile's
    PAPER_REFERENCE)."""
    return Path(schema_path).resolve().parent.parent.parent / REFERENCE


def load_config(config: Mapping[str, Any] | Path | str, schema_path: Path | str,
                reference: Path | str | None = None) -> dict[str, Any]:
    """Validate a config (mapping or YAML path) against the schema and the semantic checks;
    return it with defaults filled in. ``reference`` (default: :func:`workflow_reference` of the
    schema) holds the paper's numbers that ``report.miss_causes`` keys name."""
    raw = load_yaml(config) if isinstance(config, (str, Path)) else dict(config)
    check_finite(raw)
    validated = validate_schema(raw, load_yaml(schema_path))
    check_semantics(validated, workflow_reference(schema_path) if reference is None else reference)
    return validated
