"""Published records: histories thinned for publishing."""

from __future__ import annotations

import pandas as pd

from kan.records import publish
from kan.records.runfiles import HISTORY_COLUMNS


def _history(steps_per_phase: int, grids: list[int]) -> pd.DataFrame:
    rows = [{"step": i * steps_per_phase + s + 1, "grid": g} for i, g in enumerate(grids) for s in range(steps_per_phase)]
    return pd.DataFrame(rows).reindex(columns=list(HISTORY_COLUMNS), fill_value=0.5)


def test_a_thinned_history_keeps_the_first_step_every_nth_and_each_phase_end():
    history = _history(60, [3, 5, 10])
    kept = publish.thinned_history(history, every=25)["step"].tolist()
    assert kept == [1, 25, 50, 60, 75, 100, 120, 125, 150, 175, 180]
