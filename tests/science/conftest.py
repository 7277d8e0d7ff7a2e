"""Fixtures of the science tests: a stand-in for the kill of a run in the middle of a stage."""

from typing import Callable

import pytest

from kan.science.stages import Stages


class KilledAt(Stages):
    """Stages of a run killed (KeyboardInterrupt) when stage ``at`` starts: the stages asked for
    before it, in the order given, are finished and kept."""

    def __init__(self, folder, at):
        super().__init__(folder)
        self.at = at

    def run_many(self, stages):
        names = list(stages)
        if self.at not in names:
            return super().run_many(stages)
        super().run_many({name: stages[name] for name in names[: names.index(self.at)]})
        raise KeyboardInterrupt(self.at)


@pytest.fixture
def killed_at() -> Callable[..., Stages]:
    """``killed_at(folder, name)``: stages killed when stage ``name`` starts."""
    return KilledAt
