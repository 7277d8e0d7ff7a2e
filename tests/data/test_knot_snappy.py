"""SnapPy knot invariants: known knots, timeouts, resumability, the shipped table."""

import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kan.data import knot_snappy as ks

SHIPPED = Path(__file__).resolve().parents[2] / "datasets" / "knot" / "knots.csv.gz"
SLOW_NAME, SLOW_S = "sleeps", 60.0  # a task that would outlast the timeout by far


def test_figure_eight_matches_deepmind_row():
    row = ks.knot_row("4_1")
    assert row["volume"] == pytest.approx(2.029883, abs=1e-6)
    assert complex(row["meridinal_translation_real"], row["meridinal_translation_imag"]) == (
        pytest.approx(1j, abs=1e-9)
    )
    assert row["longitudinal_translation"] == pytest.approx(3.464102, abs=1e-6)
    assert row["cusp_volume"] == pytest.approx(3.464102, abs=1e-6)
    assert row["short_geodesic_real_part"] == pytest.approx(1.087070, abs=1e-6)
    assert row["injectivity_radius"] == pytest.approx(0.4812118, abs=1e-6)
    assert row["Symmetry_D4"] == 1.0 and sum(row[c] for c in ks.SYMMETRY_COLUMNS.values()) == 1
    assert row["signature"] == 0
    assert (row["hyperbolic_torsion_degree"], row["hyperbolic_adjoint_torsion_degree"]) == (2, 3)


def test_five_two_matches_deepmind_row_218479():
    # DeepMind subset, test/train row 218479 (float32 values)
    deepmind = {
        "chern_simons": -0.1532041281461715, "cusp_volume": 3.946927055535099,
        "hyperbolic_adjoint_torsion_degree": 3, "hyperbolic_torsion_degree": 2,
        "injectivity_radius": 0.28119957447052, "longitudinal_translation": 4.469301700592041,
        "meridinal_translation_imag": 0.8831194043159485,
        "meridinal_translation_real": -0.7381179332733154,
        "short_geodesic_imag_part": -2.8154308795928955,
        "short_geodesic_real_part": 0.56239914894104, "Symmetry_Z/2 + Z/2": 1.0,
        "volume": 2.828122138977051, "signature": -2,
    }
    row = ks.knot_row("5_2")
    for column, value in deepmind.items():
        assert row[column] == pytest.approx(value, rel=1e-6, abs=1e-6), column


@pytest.mark.parametrize("name", ["3_1", "5_1"])
def test_torus_knots_are_skipped(name):
    with pytest.raises(ks.KnotSkipped, match="not hyperbolic"):
        ks.knot_row(name)


def test_seifert_signature_is_exact():
    assert ks.seifert_signature([[-1, 1], [0, -1]]) == 2  # trefoil: V + V^T negative definite
    assert ks.seifert_signature([[0, 1], [0, 0]]) == 0  # needs the zero-diagonal pivot
    assert ks.seifert_signature([[1, 0], [-1, -1]]) == 0  # figure-eight


def sleepy_knot_row(name: str) -> dict:
    """``knot_row``, but SLOW_NAME sleeps SLOW_S first (imported by name in the workers)."""
    if name == SLOW_NAME:
        time.sleep(SLOW_S)
    return ks.knot_row(name)


def test_timeout_kills_the_worker_and_the_run_goes_on():
    results = []  # (kind, name, payload, time of arrival)

    def on_result(kind, name, payload):
        results.append((kind, name, payload, time.monotonic()))

    ks.run_pool(["4_1", SLOW_NAME, "3_1"], workers=1, timeout_s=1.0, on_result=on_result,
                task=sleepy_knot_row)
    assert [(kind, name) for kind, name, *_ in results] == [
        ("row", "4_1"), ("skip", SLOW_NAME), ("skip", "3_1")
    ]
    (_, _, row, t_row), (_, _, timeout, t_timeout), (_, _, reason, t_last) = results
    assert row["volume"] == pytest.approx(2.029883, abs=1e-6)
    assert timeout == "timeout after 1 s" and t_timeout - t_row >= 1.0
    assert reason.startswith("not hyperbolic")
    assert t_last - t_row < SLOW_S / 2  # the sleeping worker was killed, not waited for


def test_resume_after_interruption_gives_the_same_rows(tmp_path):
    names = ["4_1", "3_1", "5_2", "6_1", "6_2"]
    full, skips = ks.generate_snappy_table(tmp_path / "a", names, workers=2, chunk_size=2)
    assert sorted(full["name"]) == ["4_1", "5_2", "6_1", "6_2"] and list(skips["name"]) == ["3_1"]
    # an interrupted run: only the first chunk on disk, plus a half-written temporary file
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for stale in ["rows-00001.csv", "skips-00001.csv", "rows-00002.csv", "skips-00002.csv"]:
        (tmp_path / "b" / stale).unlink()
    (tmp_path / "b" / ".rows-00001.csv.tmp").write_text("name,vol")
    first = ks.read_chunks(tmp_path / "b")[0]
    resumed, skips_b = ks.generate_snappy_table(tmp_path / "b", names, workers=2, chunk_size=2)
    pd.testing.assert_frame_equal(resumed, full)
    pd.testing.assert_frame_equal(skips_b, skips)
    assert len(list((tmp_path / "b").glob("rows-*.csv"))) == 3
    assert set(pd.read_csv(tmp_path / "b" / "rows-00000.csv")["name"]) == set(first["name"])
    with pytest.raises(ValueError, match="different knot list"):
        ks.generate_snappy_table(tmp_path / "b", ["5_2"], workers=1)
    shorter, _ = ks.generate_snappy_table(tmp_path / "b", names[:3], workers=1)
    assert list(shorter["name"]) == ["4_1", "5_2"]


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped table datasets/knot/ not built")
def test_shipped_rows_regenerate():
    table = pd.read_csv(SHIPPED)
    assert list(table.columns) == ks.TABLE_COLUMNS and table["name"].is_unique
    for _, expected in table.sample(5, random_state=1).iterrows():
        row = ks.knot_row(expected["name"])
        for column in ks.INPUT_COLUMNS:
            got, want = row[column], expected[column]
            if column == "short_geodesic_imag_part":  # ties: +/- for amphichiral knots
                got, want = abs(got), abs(want)
            assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-5), (expected["name"], column)
        assert row["signature"] == expected["signature"]
    assert np.all(table["signature"] % 2 == 0)
