"""Finished stages of a science experiment: kept, read back after a kill, then cleared."""

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


def test_a_stage_is_computed_once_then_read_back(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"rows": [1.5, 2.5]}

    assert Stages(tmp_path / "a").run("first", compute) == {"rows": [1.5, 2.5]}
    again = Stages(tmp_path / "a")
    assert again.run("first", compute) == {"rows": [1.5, 2.5]} and len(calls) == 1
    assert again.finished() == ["first"] and again.restored_cpu_seconds >= 0.0
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
    assert list(tmp_path.iterdir()) == []  # neither the stage nor a temporary file


def test_stage_names_are_file_names():
    with pytest.raises(ValueError, match="stage name 'a/b'"):
        Stages().run("a/b", lambda: 0)


@pytest.mark.slow
def test_a_killed_pde_run_resumes_with_the_numbers_of_an_uninterrupted_one(tmp_path):
    whole = pde.run_pde_experiment(TINY_PDE)
    with pytest.raises(Killed):
        pde.run_pde_experiment(TINY_PDE, KilledAt(tmp_path, "mlp-1"))
    assert Stages(tmp_path).finished() == ["kan-0-G3", "kan-1-G6", "mlp-0"]
    resumed_stages = Stages(tmp_path)
    resumed = pde.run_pde_experiment(TINY_PDE, resumed_stages)
    assert resumed_stages.restored_seconds > 0  # three of the four stages were read back
    timing = ["seconds"]
    pd.testing.assert_frame_equal(resumed.drop(columns=timing), whole.drop(columns=timing))
