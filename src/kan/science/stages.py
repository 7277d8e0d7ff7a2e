"""Finished stages of a long science experiment, kept on disk so that a killed run goes on after
its last finished stage with the numbers an uninterrupted run gives.

An experiment splits its work into stages that depend only on their inputs (every model has its
own seeded generator), and asks :meth:`Stages.run` for each: the first time it computes the stage
and pickles the result into the folder (atomically: a kill mid-write leaves no half file), later
it reads it back (a file a crash left unreadable is computed again). The folder must be keyed by
everything the results depend on (the pipeline uses the experiment's settings, the code and
the machine kind, :func:`kan.science.registry.stage_folder`) and is removed once the
experiment has written its outputs. ``Stages()`` keeps nothing.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

Result = TypeVar("Result")
_NAME = re.compile(r"[A-Za-z0-9_.=+-]+")


class Stages:
    """The finished stages of one experiment run in ``folder`` (None: compute every stage, keep none).

    ``restored_seconds`` / ``restored_cpu_seconds``: the wall and CPU time that the stages read
    back took when they were computed, so a resumed run can record what its results cost."""

    def __init__(self, folder: Path | str | None = None) -> None:
        self.folder = None if folder is None else Path(folder)
        self.restored_seconds = self.restored_cpu_seconds = 0.0

    def run(self, name: str, compute: Callable[[], Result]) -> Result:
        """Stage ``name``'s result: read back when a run before this one finished it, else computed
        and kept. ``name``: letters, digits and ``_ . = + -`` (it becomes a file name)."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"stage name {name!r}: use letters, digits and _ . = + - only")
        if self.folder is None:
            return compute()
        path = self.folder / f"{name}.pkl"
        kept = _read(path)
        if kept is not None:
            self.restored_seconds += kept["seconds"]
            self.restored_cpu_seconds += kept["cpu_seconds"]
            return kept["result"]
        started, cpu = time.perf_counter(), time.process_time()
        result = compute()
        kept = {"result": result, "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                pickle.dump(kept, stream)
                stream.flush()
                os.fsync(stream.fileno())  # on disk before it is named: a crash leaves no empty stage
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return result

    def finished(self) -> list[str]:
        """Names of the stages kept so far."""
        return sorted(p.stem for p in self.folder.glob("*.pkl")) if self.folder and self.folder.is_dir() else []

    def clear(self) -> None:
        """Forget every kept stage (after the experiment has written its outputs)."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _read(path: Path) -> dict[str, Any] | None:
    """A kept stage, or None when there is none or it cannot be read (then it is removed)."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as stream:
            return pickle.load(stream)
    except (EOFError, pickle.UnpicklingError):
        path.unlink(missing_ok=True)
        return None
