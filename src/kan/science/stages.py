"""Finished stages of a long science experiment, kept on disk so that a killed run goes on after
its last finished stage with the numbers an uninterrupted run gives.

An experiment splits its work into stages that depend only on their inputs (every model has its
own seeded generator), and asks :meth:`Stages.run` for each: the first time it computes the stage
and pickles the result into the folder (atomically: a kill mid-write leaves no half file), later
it reads it back (a file a crash left unreadable is computed again). The folder must be keyed by
everything the results depend on (the pipeline uses the experiment's settings, the code and
the machine kind, :func:`kan.science.registry.stage_folder`) and is removed once the
experiment has written its outputs. ``Stages()`` keeps nothing.

Stages that do not need each other can be asked for together (:meth:`Stages.run_many`); with
``workers`` > 1 the missing ones are computed in that many forked processes, one thread each, so
their numbers are those of a run in one single-threaded process. Only on Linux: elsewhere forking
a process that has loaded torch is not safe, and the stages are computed one by one. A worker that
dies (killed, out of memory) fails the run with :class:`WorkerLost` rather than leaving it waiting,
and a failure in the caller ends the workers at once; the stages finished before are kept.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import re
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

import torch
from threadpoolctl import threadpool_limits

Result = TypeVar("Result")
Kept = dict[str, Any]  # {"result": ..., "seconds": wall, "cpu_seconds": CPU of the process that computed it}
_NAME = re.compile(r"[A-Za-z0-9_.=+-]+")
_PENDING: list[Callable[[], Any]] = []  # the computations a forked worker finds by index
_PR_SET_PDEATHSIG = 1  # Linux prctl option: the signal a process gets when its parent dies
_in_worker = False  # set in a worker process: stages asked for there are computed in it, one by one


class Stages:
    """The finished stages of one experiment run in ``folder`` (None: compute every stage, keep
    none), computed by up to ``workers`` processes when asked for together.

    ``restored_seconds`` / ``restored_cpu_seconds``: the wall and CPU time that the stages read
    back took when they were computed, so a resumed run can record what its results cost;
    ``worker_cpu_seconds``: the CPU time of the stages computed in worker processes, which the
    caller's own process time does not see."""

    def __init__(self, folder: Path | str | None = None, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.folder = None if folder is None else Path(folder)
        self.workers = workers
        self.restored_seconds = self.restored_cpu_seconds = self.worker_cpu_seconds = 0.0

    def run(self, name: str, compute: Callable[[], Result]) -> Result:
        """Stage ``name``'s result: read back when a run before this one finished it, else computed
        and kept. ``name``: letters, digits and ``_ . = + -`` (it becomes a file name)."""
        return self.run_many({name: compute})[0]

    def run_many(self, stages: Mapping[str, Callable[[], Any]]) -> list[Any]:
        """The results of independent stages, in the order given: those kept are read back, the
        others computed (in parallel with ``workers`` > 1; the longest first is best) and each
        kept as soon as it is done, so a kill loses only the stages in progress."""
        for name in stages:
            if not _NAME.fullmatch(name):
                raise ValueError(f"stage name {name!r}: use letters, digits and _ . = + - only")
        results, missing = {}, {}
        for name, compute in stages.items():
            kept = self._restore(name)
            if kept is None:
                missing[name] = compute
            else:
                results[name] = kept["result"]
        parallel = self.workers > 1 and len(missing) > 1 and not _in_worker and sys.platform == "linux"
        computed = _in_workers(missing, self.workers) if parallel else ((n, _timed(c)) for n, c in missing.items())
        with closing(computed):  # a failure here ends the workers now, not when the generator is collected
            for name, kept in computed:
                self._keep(name, kept)
                if parallel:
                    self.worker_cpu_seconds += kept["cpu_seconds"]
                results[name] = kept["result"]
        return [results[name] for name in stages]

    def finished(self) -> list[str]:
        """Names of the stages kept so far."""
        return sorted(p.stem for p in self.folder.glob("*.pkl")) if self.folder and self.folder.is_dir() else []

    def clear(self) -> None:
        """Forget every kept stage (after the experiment has written its outputs)."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _restore(self, name: str) -> Kept | None:
        """Stage ``name`` as a run before this one kept it (its cost added to the restored times)."""
        kept = None if self.folder is None else _read(self.folder / f"{name}.pkl")
        if kept is not None:
            self.restored_seconds += kept["seconds"]
            self.restored_cpu_seconds += kept["cpu_seconds"]
        return kept

    def _keep(self, name: str, kept: Kept) -> None:
        """Pickle a computed stage into the folder, atomically (nothing without a folder)."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                pickle.dump(kept, stream)
                stream.flush()
                os.fsync(stream.fileno())  # on disk before it is named: a crash leaves no empty stage
            os.replace(temporary, self.folder / f"{name}.pkl")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


@contextmanager
def single_threaded() -> Iterator[None]:
    """Torch and the BLAS/OpenMP libraries at one thread inside the block (as a single-core job
    runs), their thread counts as before after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


def _timed(compute: Callable[[], Any]) -> Kept:
    """``compute()`` with the wall and CPU time it took in this process."""
    started, cpu = time.perf_counter(), time.process_time()
    result = compute()
    return {"result": result, "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


def _in_workers(stages: Mapping[str, Callable[[], Any]], workers: int) -> Iterator[tuple[str, Kept]]:
    """(name, kept stage) as each finishes, computed by ``workers`` forked processes. Forking lets
    the workers run the callables as they are (closures need no pickling); only results travel.
    A stage's exception is raised here; a worker that dies (killed, out of memory, crashed) or
    sends back what cannot be read raises :class:`WorkerLost`. When anything stops the caller
    before every stage is done, the workers are ended with it."""
    names = list(stages)
    _PENDING[:] = stages.values()
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(min(workers, len(names)), multiprocessing.get_context("fork"),
                               initializer=_single_threaded_worker)
    finished = False
    try:
        futures = {pool.submit(_compute_pending, index): names[index] for index in range(len(names))}
        for future in as_completed(futures):
            try:
                kept = future.result()
            except BrokenProcessPool as error:  # every stage not finished by then fails with it
                lost = sorted(name for f, name in futures.items() if f.done() and not f.cancelled()
                              and isinstance(f.exception(), BrokenProcessPool))
                raise WorkerLost(f"a worker process ended without returning a result (killed, out of memory, "
                                 f"crashed, or its result could not be read back); stages not computed: "
                                 f"{', '.join(lost)}; the stages finished before are kept") from error
            yield futures[future], kept
        finished = True
    finally:
        if not finished:  # end the workers now, not after the stages they are computing
            for process in set(multiprocessing.active_children()) - before:
                process.terminate()
        # the pool's own thread reaps its workers: joining them here as well raced with it, and a
        # worker could still count as alive when this returned
        pool.shutdown(wait=True, cancel_futures=True)
        _PENDING.clear()


class WorkerLost(RuntimeError):
    """A worker process computing stages ended without returning a result."""


def _single_threaded_worker() -> None:
    """Worker set-up: one thread for torch and the BLAS/OpenMP libraries (the numbers of a
    single-threaded run), ended with its parent (Linux's parent-death signal), so that a killed
    run leaves no orphan computing."""
    global _in_worker
    _in_worker = True
    torch.set_num_threads(1)
    threadpool_limits(1)
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _compute_pending(index: int) -> Kept:
    """Worker body: compute the ``index``-th pending stage."""
    return _timed(_PENDING[index])


def _read(path: Path) -> dict[str, Any] | None:
    """A kept stage, or None when there is none or it cannot be read back (then it is removed): a
    file a crash cut short, or one whose pickled objects this code no longer defines the same way
    (a moved or renamed class, a changed constructor)."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as stream:
            return pickle.load(stream)
    except Exception:  # any failure to unpickle means the stage must be computed again
        path.unlink(missing_ok=True)
        return None
