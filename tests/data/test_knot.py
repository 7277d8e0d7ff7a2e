"""Knot data loaders: DeepMind CSV validation, dedup policy, splits, the shipped table."""

from pathlib import Path

import pandas as pd
import pytest

from kan.data import knot
from kan.data.io import read_dataset, to_tensors, validate_data, write_dataset
from kan.data.knot_snappy import INPUT_COLUMNS

SUBSET = Path("/work/shared/data/knot_deepmind_subset")
needs_subset = pytest.mark.skipif(
    not (SUBSET / "train.csv").is_file(),
    reason=f"DeepMind subset not found at {SUBSET} (a user-supplied file, not in the repo)",
)
KEY = [*INPUT_COLUMNS, "signature"]
SHIPPED = knot.REPO_ROOT / "datasets" / "knot" / "knots.csv.gz"


@pytest.fixture(scope="module")
def deepmind() -> knot.GeneratedData:
    return knot.generate("deepmind", {"path": str(SUBSET)}, seed=0)


@needs_subset
def test_deepmind_subset_loads(deepmind, tmp_path):
    validate_data(deepmind)
    back = read_dataset(write_dataset(tmp_path / "dm", deepmind))
    pd.testing.assert_frame_equal(back.test, deepmind.test)
    meta = deepmind.meta
    assert meta["classes"] == list(range(-12, 13, 2)) and meta["n_classes"] == 13
    assert [f["sha256"][:8] for f in meta["files"]] == ["efd57677", "8086a5df"]
    assert meta["n_test"] == 5000 and meta["dedup"]["dropped_train_equal_to_test"] > 0
    assert list(deepmind.train.columns[1:18]) == INPUT_COLUMNS
    tensors = to_tensors(deepmind)
    assert tensors["train_input"].shape == (meta["n_train"], 17)
    row = deepmind.train.iloc[0]
    assert row["signature_class"] == (row["signature"] + 12) // 2


@needs_subset
def test_dedup_leaves_no_test_row_in_train(deepmind):
    train, test = deepmind.train, deepmind.test
    assert train.merge(test[KEY].drop_duplicates(), on=KEY).empty
    fit, val = train[train["split"] == "train"], train[train["split"] == "val"]
    assert fit.merge(val[KEY].drop_duplicates(), on=KEY).empty
    assert len(val) == deepmind.meta["validation"]["n_rows"] > 0


@needs_subset
def test_dedup_off_keeps_the_paper_setup():
    data = knot.generate("deepmind", {"path": str(SUBSET), "dedup": False}, seed=0)
    assert data.meta["n_train"] == 10_000
    assert not data.train.merge(data.test[KEY].drop_duplicates(), on=KEY).empty


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.fixture()
def small_csv(tmp_path) -> pd.DataFrame:
    rows = pd.read_csv(SUBSET / "test.csv", nrows=40) if SUBSET.is_dir() else None
    if rows is None:
        pytest.skip(f"DeepMind subset not found at {SUBSET}")
    return rows


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns=["volume"]), "missing columns \\['volume'\\]"),
        (lambda f: f.assign(extra=1.0), "unexpected columns \\['extra'\\]"),
        (lambda f: f.assign(cusp_volume="x"), "'cusp_volume' is not numeric"),
        (lambda f: f.assign(volume=f["volume"].where(f.index != 3)), "'volume' has NaN.* row 3"),
        (lambda f: f.assign(signature=f["signature"] + (f.index == 5)), "odd signature .*row 5"),
        (lambda f: f.assign(signature=f["signature"] + 0.5), "'signature' is not integer"),
    ],
)
def test_invalid_csv_is_rejected(small_csv, tmp_path, edit, message):
    path = _write(edit(small_csv), tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=message):
        knot.generate("deepmind", {"path": str(path)}, seed=0)


def test_single_csv_is_split_deterministically(small_csv, tmp_path):
    path = _write(small_csv, tmp_path / "all.csv")
    spec = {"path": str(path), "dedup": False, "test_fraction": 0.25}
    _write(small_csv.drop(columns=small_csv.columns[0]), path)  # no index column: numbered
    first, second = (knot.generate("deepmind", spec, seed=3) for _ in range(2))
    assert first.meta["n_test"] == 10 and first.meta["n_train"] == 30
    assert sorted([*first.train["row"], *first.test["row"]]) == list(range(40))
    pd.testing.assert_frame_equal(first.train, second.train)


def test_unknown_spec_key_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="unknown key 'colour'"):
        knot.generate("deepmind", {"colour": 1}, seed=0)
    with pytest.raises(ValueError, match="no CSV folder or file"):
        knot.generate("deepmind", {"path": str(tmp_path / "absent")}, seed=0)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped table datasets/knot/ not built")
def test_snappy_task_reads_the_shipped_table():
    data = knot.generate("snappy", None, seed=0)
    validate_data(data)
    train_knots = set(data.train["name"].str.rstrip("*"))
    assert not train_knots & set(data.test["name"].str.rstrip("*"))  # split by knot
    assert (data.train["signature"] % 2 == 0).all()
    mirrors = data.test[data.test["name"].str.endswith("*")]
    assert len(mirrors) == len(data.test) // 2
    assert data.meta["table"]["methods"]["signature"].startswith("-sign(V + V^T)")
