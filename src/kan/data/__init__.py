"""The five data families and their registry.

Each family module (``kan.data.<family>``) exposes ``TASKS`` (name -> task definition)
and ``generate(name, spec, seed) -> GeneratedData``. Modules are imported lazily so one
family's import error cannot break the others. Generated datasets live by convention in
``datasets/generated/<family>/<name>/`` (see ``dataset_dir``); a ``DatasetRequest`` names one
(task, spec overrides, seed) so that a consumer can read the folder the pipeline wrote or
generate the same data in memory.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from kan.data.io import GeneratedData, definition_digest, read_dataset, to_tensors, write_dataset
from kan.data.spec import lookup_task, merge_spec
from kan.files import sources_digest

FAMILIES = ("synthetic", "feynman", "special", "knot", "anderson")

__all__ = [
    "FAMILIES",
    "DatasetRequest",
    "code_digest",
    "GeneratedData",
    "dataset_dir",
    "definition_digest",
    "definition_of",
    "family_module",
    "generate",
    "generate_to_dir",
    "generated_root",
    "read_dataset",
    "task_names",
    "task_size",
    "to_tensors",
    "with_requests",
    "write_dataset",
]


SHARED_SOURCES = ("__init__.py", "io.py", "sampling.py", "spec.py")  # every family's generator uses these


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown data family '{family}'; valid families: {', '.join(FAMILIES)}")


@cache  # the source does not change under a running pipeline; the data rule asks once per dataset
def code_digest(family: str) -> str:
    """sha256 (16 hex digits) of the source that generates ``family``'s datasets: its module(s)
    (``<family>.py``, ``<family>_*.py``) and the shared ones. The pipeline's data rule takes it as a
    parameter, so a changed generator (a range, a formula, a split) regenerates that family's
    datasets instead of leaving the old data to be trained on as current."""
    _check_family(family)
    folder = Path(__file__).parent
    names = sorted({*SHARED_SOURCES, f"{family}.py", *(p.name for p in folder.glob(f"{family}_*.py"))})
    return sources_digest(folder, [folder / name for name in names])


def family_module(family: str) -> ModuleType:
    """Import and return ``kan.data.<family>``; ValueError for an unknown family."""
    _check_family(family)
    return importlib.import_module(f"kan.data.{family}")


def task_names(family: str) -> list[str]:
    """Names of the tasks of ``family``."""
    return list(family_module(family).TASKS)


def task_size(family: str, name: str, spec: Mapping[str, Any] | None) -> tuple[int, int]:
    """(sampled variables, training rows) of a uniformly sampled task (synthetic, Feynman,
    special) under the ``spec`` overrides, known before its data exist."""
    task = lookup_task(family_module(family).TASKS, name, family=family)
    merged = merge_spec(task.defaults(), spec, where=f"{family}/{name}")
    return len(merged["ranges"]), merged["n_train"]


def generate(family: str, name: str, spec: dict | None, seed: int) -> GeneratedData:
    """Generate task ``name`` of ``family`` in memory (spec overrides the task defaults)."""
    return family_module(family).generate(name, spec, seed)


def definition_of(family: str, name: str, spec: dict | None, seed: int) -> str:
    """The :func:`definition_digest` of task ``name`` of ``family`` as this code generates it."""
    return definition_digest(generate(family, name, spec, seed).meta)


def generate_to_dir(
    family: str, name: str, spec: dict | None, seed: int, out_dir: Path | str
) -> Path:
    """Validate, generate and atomically write a dataset to ``out_dir``; return it."""
    return write_dataset(out_dir, generate(family, name, spec, seed))


def generated_root(root: Path | str) -> Path:
    """The folder ``<root>/generated`` that holds the generated datasets, one ``<family>/<name>`` each."""
    return Path(root) / "generated"


def dataset_dir(root: Path | str, family: str, name: str) -> Path:
    """Conventional location ``<root>/generated/<family>/<name>`` of a generated dataset."""
    return generated_root(root) / family / name


def _canonical(value: Any) -> Any:
    """``value`` as JSON would store it (tuples become lists), for comparisons with meta.json."""
    return json.loads(json.dumps(value))


@dataclass(frozen=True)
class DatasetRequest:
    """One dataset a consumer reads: task ``name`` of ``family`` generated with the spec
    overrides ``spec`` and ``seed`` (the data rule's folder ``<family>/<name>``)."""

    family: str
    name: str
    spec: Mapping[str, Any]
    seed: int

    @property
    def key(self) -> str:
        """``"<family>/<name>"``, the folder below the datasets root."""
        return f"{self.family}/{self.name}"

    @property
    def params(self) -> dict[str, Any]:
        """``{"spec", "seed"}``: what the data rule generates the folder with."""
        return {"spec": _canonical(dict(self.spec)), "seed": self.seed}

    def check(self, data: GeneratedData) -> GeneratedData:
        """``data`` itself; ValueError naming the difference when it is another task, spec or seed."""
        meta = data.meta
        found = {"task": f"{meta['family']}/{meta['name']}", "seed": meta["seed"],
                 **{f"spec '{k}'": meta["spec"].get(k) for k in self.spec}}
        wanted = {"task": self.key, "seed": self.seed, **{f"spec '{k}'": v for k, v in self.spec.items()}}
        wrong = [f"{k} is {_canonical(found[k])!r}, not {_canonical(v)!r}" for k, v in wanted.items()
                 if _canonical(found[k]) != _canonical(v)]
        if wrong:
            raise ValueError(f"dataset does not match {self.key}: {'; '.join(wrong)}; regenerate it")
        return data

    def load(self, source: GeneratedData | Path | str | None = None) -> GeneratedData:
        """The data: ``source`` (in memory or a dataset folder) checked against this request,
        or generated in memory when None."""
        if source is None:
            return generate(self.family, self.name, dict(self.spec), self.seed)
        return self.check(source if isinstance(source, GeneratedData) else read_dataset(source))


def with_requests(
    table: Mapping[tuple[str, str], Mapping[str, Any]], requests: Iterable[DatasetRequest]
) -> dict[tuple[str, str], dict[str, Any]]:
    """``table`` ((family, name) -> ``{"spec", "seed"}``) with ``requests`` added; ValueError
    when one folder is wanted with two different specs or seeds."""
    merged = {key: dict(value) for key, value in table.items()}
    for request in requests:
        key, params = (request.family, request.name), request.params
        if key in merged and _canonical(merged[key]) != params:
            raise ValueError(f"dataset {request.key} is wanted with two different specs or seeds: "
                             f"{_canonical(merged[key])} and {params}; make them agree")
        merged[key] = params
    return merged
