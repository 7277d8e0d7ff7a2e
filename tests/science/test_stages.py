"""Finished stages of a science experiment: kept, read back after a kill, then cleared."""

import multiprocessing
import os
import pickle
import subprocess
import sys
import time
import types
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import torch
from threadpoolctl import threadpool_info

from kan.science import pde
from kan.science.stages import Stages, single_threaded

TINY_PDE = {
    "n_interior": 150, "n_boundary": 40, "kan_width": [2, 3, 1], "kan_grids": [3, 6], "kan_steps": 2,
    "mlp_widths": [[2, 5, 1], [2, 8, 8, 1]], "n_test_per_side": 11,
}


def _busy(seconds):
    """Spend about ``seconds`` of CPU time."""
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass
    return "done"


def test_a_stage_is_computed_once_then_read_back_with_its_cost(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"rows": [1.5, 2.5], "work": _busy(0.05)}

    assert Stages(tmp_path / "a").run("first", compute) == {"rows": [1.5, 2.5], "work": "done"}
    again = Stages(tmp_path / "a")
    assert again.run("first", compute) == {"rows": [1.5, 2.5], "work": "done"} and len(calls) == 1
    with (tmp_path / "a" / "first.pkl").open("rb") as stream:
        kept = pickle.load(stream)
    assert again.finished() == ["first"] and again.restored_cpu_seconds == kept["cpu_seconds"] >= 0.05
    again.clear()
    assert not (tmp_path / "a").exists() and Stages(tmp_path / "a").finished() == []


def test_nothing_is_kept_without_a_folder_or_from_a_failed_stage(tmp_path):
    calls = []
    Stages().run("first", lambda: calls.append(1))
    Stages().run("first", lambda: calls.append(1))
    assert len(calls) == 2

    def fails():
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        Stages(tmp_path).run("broken", fails)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):  # a result that cannot be kept
        Stages(tmp_path).run("unpicklable", lambda: (lambda: 0))
    assert list(tmp_path.rglob("*")) == []  # neither a stage nor a temporary file


def test_an_unreadable_stage_is_computed_again(tmp_path):
    (tmp_path / "first.pkl").write_bytes(b"")  # what a crash before the data reached the disk could leave
    assert Stages(tmp_path).run("first", lambda: 42) == 42
    assert Stages(tmp_path).run("first", lambda: 0) == 42


def test_stage_names_are_file_names():
    with pytest.raises(ValueError, match="stage name 'a/b'"):
        Stages().run("a/b", lambda: 0)


@pytest.mark.slow
def test_a_killed_pde_run_resumes_with_the_numbers_of_an_uninterrupted_one(tmp_path, killed_at):
    whole = pde.run_pde_experiment(TINY_PDE)
    timing = ["seconds"]
    # the KAN goes on from its pickled first phase; the MLPs after the KAN, the larger one first
    for killed, kept in (("kan-1-G6", ["kan-0-G3"]), ("mlp-0", ["kan-0-G3", "kan-1-G6", "mlp-1"])):
        folder = tmp_path / killed
        with pytest.raises(KeyboardInterrupt):
            pde.run_pde_experiment(TINY_PDE, killed_at(folder, killed))
        assert Stages(folder).finished() == kept
        resumed = pde.run_pde_experiment(TINY_PDE, Stages(folder))
        pd.testing.assert_frame_equal(resumed.drop(columns=timing), whole.drop(columns=timing))


forked_workers = pytest.mark.skipif(sys.platform != "linux", reason="stages run in forked workers on Linux only")


def _busy_in(seconds):
    """(this process's id, "done") after about ``seconds`` of CPU time."""
    return os.getpid(), _busy(seconds)


@forked_workers
def test_stages_asked_for_together_run_in_workers_and_come_back_in_order(tmp_path):
    stages = Stages(tmp_path, workers=2)
    stages.run("kept", lambda: (0, "kept before"))
    tasks = {"kept": lambda: (0, "computed again"), "long": lambda: _busy_in(0.5), **{
        f"short-{i}": partial(_busy_in, 0.05) for i in range(3)}}
    results = stages.run_many(tasks)
    assert [done for _, done in results] == ["kept before", "done", "done", "done", "done"]
    workers = {pid for pid, _ in results[1:]}
    assert os.getpid() not in workers and len(workers) == 2  # the long one kept a worker busy
    assert stages.finished() == sorted(tasks) and stages.worker_cpu_seconds >= 0.5 + 3 * 0.05
    assert Stages(tmp_path, workers=2).run_many(tasks) == results  # all read back


@forked_workers
def test_a_failing_stage_in_a_worker_fails_the_run_and_keeps_the_stages_done_before(tmp_path):
    def fails():
        _busy(0.2)  # the short ones finish first
        raise RuntimeError("diverged")

    tasks = {"fails": fails, "short-0": partial(_busy_in, 0.01), "short-1": partial(_busy_in, 0.01)}
    with pytest.raises(RuntimeError, match="diverged"):
        Stages(tmp_path, workers=2).run_many(tasks)
    assert Stages(tmp_path).finished() == ["short-0", "short-1"]
    with pytest.raises(ValueError, match="workers must be at least 1"):
        Stages(workers=0)


def test_single_threaded_sets_one_thread_and_restores_the_count():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with single_threaded():
            assert torch.get_num_threads() == 1
            assert all(pool["num_threads"] == 1 for pool in threadpool_info())
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


@forked_workers
def test_workers_end_when_the_run_is_killed(tmp_path):
    script = (
        "import os, sys, time\n"
        "from kan.science.stages import Stages\n"
        "def sleeper(path):\n"
        "    def sleep():\n"
        "        open(path, 'w').write(str(os.getpid())); time.sleep(60)\n"
        "    return sleep\n"
        f"Stages(workers=2).run_many({{n: sleeper(r'{tmp_path}/' + n) for n in ('a', 'b')}})\n"
    )
    run = subprocess.Popen([sys.executable, "-c", script])
    try:
        workers = _wait_for(lambda: [int((tmp_path / n).read_text()) for n in "ab" if (tmp_path / n).is_file()], 2)
    finally:
        run.kill()
        run.wait()
    assert _wait_for(lambda: [pid for pid in workers if not _alive(pid)], len(workers)) == workers


def _wait_for(poll, count, timeout=30.0):
    """``poll()`` once it returns ``count`` items (within ``timeout`` seconds), else what it returned last."""
    deadline = time.monotonic() + timeout
    while len(found := poll()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _alive(pid):
    """Whether process ``pid`` runs (a zombie, ended but not reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def test_stages_asked_for_inside_a_worker_are_computed_there(tmp_path):
    stages = Stages(tmp_path, workers=2)

    def nested(name):
        return stages.run_many({f"{name}-inner-{i}": partial(_busy_in, 0.01) for i in range(2)})

    outer = stages.run_many({"a": partial(nested, "a"), "b": partial(nested, "b")})
    assert all(len({pid for pid, _ in inner}) == 1 for inner in outer)  # each in its own worker, not a pool of its own


def _stages_script(tmp_path, body):
    """A Python script that asks Stages(<tmp_path>/stages, workers=2) for stages defined by ``body``
    and prints the results; run in its own process so that a hang fails the test (timeout)
    instead of stalling the suite."""
    return subprocess.run([sys.executable, "-c", "import os, signal, sys\nfrom kan.science.stages import Stages\n"
                           f"stages = Stages(r'{tmp_path / 'stages'}', workers=2)\n{body}"],
                          capture_output=True, text=True, timeout=120)


@forked_workers
def test_a_worker_that_dies_fails_the_run_and_keeps_the_stages_done_before(tmp_path):
    run = _stages_script(tmp_path, "def dies():\n    import time; time.sleep(0.5); os.kill(os.getpid(), signal.SIGKILL)\n"
                                   "print(stages.run_many({'dies': dies, 'short': lambda: 1}))\n")
    assert run.returncode != 0 and "WorkerLost: a worker process ended without returning a result" in run.stderr
    assert "stages not computed: dies;" in run.stderr
    assert Stages(tmp_path / "stages").finished() == ["short"]


@forked_workers
def test_an_error_the_parent_cannot_read_back_fails_the_run(tmp_path):
    run = _stages_script(tmp_path, "class Odd(Exception):\n    def __init__(self, a, b):\n        super().__init__(a)\n"
                                   "def fails():\n    raise Odd(1, 2)\n"
                                   "print(stages.run_many({'odd': fails, 'short': lambda: 1}))\n")
    assert run.returncode != 0 and "WorkerLost" in run.stderr


@forked_workers
def test_workers_end_when_the_caller_fails_before_every_stage_is_done(tmp_path):
    class DiskFull(Stages):
        def _keep(self, name, kept):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        DiskFull(tmp_path, workers=2).run_many({"short": lambda: 0, **{f"long-{i}": partial(time.sleep, 30) for i in range(3)}})
    assert multiprocessing.active_children() == []  # ended at once, not after their 30 s


@forked_workers
def test_workers_compute_with_one_thread_whatever_the_caller_uses():
    def threads():
        return torch.get_num_threads(), sorted({pool["num_threads"] for pool in threadpool_info()})

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert Stages(workers=2).run_many({"a": threads, "b": threads}) == [(1, [1]), (1, [1])]
    finally:
        torch.set_num_threads(before)


def test_a_stage_kept_by_code_that_no_longer_exists_is_computed_again(tmp_path):
    module = types.ModuleType("kan_stage_test_gone")
    exec("class Old:\n    pass\n", module.__dict__)
    sys.modules[module.__name__] = module
    try:
        Stages(tmp_path).run("old", module.Old)
    finally:
        del sys.modules[module.__name__]  # a class since moved or renamed
    assert Stages(tmp_path).run("old", lambda: 42) == 42
    assert Stages(tmp_path).run("old", lambda: 0) == 42
