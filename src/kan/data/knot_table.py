"""The knot-invariant table's layout, shared by the knot task (:mod:`kan.data.knot`) and the
download of DeepMind's table (:mod:`kan.data.knot_download`): one CSV read and checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kan.data.knot_snappy import INPUT_COLUMNS, INTEGER_COLUMNS, TARGET


def read_knot_csv(path: Path, id_column: str) -> pd.DataFrame:
    """Read and validate one CSV: ``id_column``, the 17 inputs and ``signature``.

    DeepMind's unnamed first column becomes ``row`` (numbered from 0 if absent). Raises ValueError naming the file and
    the column (and row) for a missing or extra column, a non-numeric or NaN value, or a
    non-integer / odd signature.
    """
    frame = pd.read_csv(path)
    frame = frame.rename(columns={"Unnamed: 0": "row"})
    if id_column == "row" and "row" not in frame.columns:
        frame.insert(0, "row", np.arange(len(frame)))
    expected = [id_column, *INPUT_COLUMNS, TARGET]
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        raise ValueError(f"{path}: missing columns {missing}, unexpected columns {extra}")
    for column in [*INPUT_COLUMNS, TARGET]:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise ValueError(f"{path}: column '{column}' is not numeric")
        bad = np.flatnonzero(~np.isfinite(frame[column].to_numpy(dtype=np.float64)))
        if len(bad):
            raise ValueError(f"{path}: column '{column}' has NaN/Inf in data row {bad[0]}")
    for column in [*INTEGER_COLUMNS, TARGET]:
        values = frame[column].to_numpy(dtype=np.float64)
        bad = np.flatnonzero(values != np.round(values))
        if len(bad):
            raise ValueError(f"{path}: column '{column}' is not integer in data row {bad[0]}")
    odd = np.flatnonzero(frame[TARGET].to_numpy(dtype=np.int64) % 2)
    if len(odd):
        raise ValueError(f"{path}: odd signature in data row {odd[0]} (knot signatures are even)")
    types = {c: np.float64 for c in INPUT_COLUMNS}
    types.update({c: np.int64 for c in [*INTEGER_COLUMNS, TARGET]})
    return frame[expected].astype(types)
