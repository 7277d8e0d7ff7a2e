"""The five data families and their registry.

Each family module (``kan.data.<family>``) exposes ``TASKS`` (name -> task definition)
and ``generate(name, spec, seed) -> GeneratedData``. Modules are imported lazily so one
family's import error cannot break the others. Generated datasets live by convention in
``datasets/generated/<family>/<name>/`` (see ``dataset_dir``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from kan.data.io import GeneratedData, read_dataset, to_tensors, write_dataset

FAMILIES = ("synthetic", "feynman", "special", "knot", "anderson")

__all__ = [
    "FAMILIES",
    "GeneratedData",
    "dataset_dir",
    "family_module",
    "generate",
    "generate_to_dir",
    "read_dataset",
    "task_names",
    "to_tensors",
    "write_dataset",
]


def family_module(family: str) -> ModuleType:
    """Import and return ``kan.data.<family>``; ValueError for an unknown family."""
    if family not in FAMILIES:
        raise ValueError(f"unknown data family '{family}'; valid families: {', '.join(FAMILIES)}")
    return importlib.import_module(f"kan.data.{family}")


def task_names(family: str) -> list[str]:
    """Names of the tasks of ``family``."""
    return list(family_module(family).TASKS)


def generate(family: str, name: str, spec: dict | None, seed: int) -> GeneratedData:
    """Generate task ``name`` of ``family`` in memory (spec overrides the task defaults)."""
    return family_module(family).generate(name, spec, seed)


def generate_to_dir(
    family: str, name: str, spec: dict | None, seed: int, out_dir: Path | str
) -> Path:
    """Validate, generate and atomically write a dataset to ``out_dir``; return it."""
    return write_dataset(out_dir, generate(family, name, spec, seed))


def dataset_dir(root: Path | str, family: str, name: str) -> Path:
    """Conventional location ``<root>/generated/<family>/<name>`` of a generated dataset."""
    return Path(root) / "generated" / family / name
