"""Finished stages of a science experiment: kept, read back after a kill, then cleared."""

import pickle
import time

import pandas as pd
import pytest

from kan.science import pde
from kan.science.stages import Stages

TINY_PDE = {
    "n_interior": 150, "n_boundary": 40, "kan_width": [2, 3, 1], "kan_grids": [3, 6], "kan_steps": 2,
    "mlp_widths": [[2, 5, 1], [2, 8, 8, 1]], "n_test_per_side": 11,
}


class Killed(Exception):
    """Stands for the kill of a run."""


class KilledAt(Stages):
    """Stages whose stage ``at`` is killed before it finishes."""

    def __init__(self, folder, at):
        super().__init__(folder)
        self.at = at

    def run(self, name, compute):
        if name == self.at:
            raise Killed(name)
        return super().run(name, compute)


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
def test_a_killed_pde_run_resumes_with_the_numbers_of_an_uninterrupted_one(tmp_path):
    whole = pde.run_pde_experiment(TINY_PDE)
    timing = ["seconds"]
    for killed_at, kept in (("kan-1-G6", ["kan-0-G3"]), ("mlp-1", ["kan-0-G3", "kan-1-G6", "mlp-0"])):
        folder = tmp_path / killed_at  # the KAN goes on from its pickled first phase; the MLPs after the KAN
        with pytest.raises(Killed):
            pde.run_pde_experiment(TINY_PDE, KilledAt(folder, killed_at))
        assert Stages(folder).finished() == kept
        resumed = pde.run_pde_experiment(TINY_PDE, Stages(folder))
        pd.testing.assert_frame_equal(resumed.drop(columns=timing), whole.drop(columns=timing))
