"""Atomic dataset writes, checksums, metadata validation and tensor conversion."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from kan.data import definition_digest, definition_of, generate, generate_to_dir, io
from kan.data.io import GeneratedData, read_dataset, to_tensors, write_dataset

SMALL = {"n_train": 30, "n_test": 20}


@pytest.fixture()
def data() -> GeneratedData:
    return generate("feynman", "I.16.6", SMALL, seed=0)


def _classification_data(labels: list[float]) -> GeneratedData:
    frame = pd.DataFrame({"x": np.linspace(0, 1, len(labels)), "label": labels})
    meta = {
        "family": "test", "name": "toy", "inputs": ["x"], "targets": ["label"],
        "task": "classification", "n_classes": 3, "generator": "hand-made", "ranges": {},
        "n_train": len(labels), "n_test": len(labels), "seed": 0, "spec": {}, "deviations": [],
    }
    return GeneratedData(train=frame, test=frame.copy(), meta=meta)


def test_roundtrip_preserves_frames_and_adds_provenance(tmp_path, data):
    out = write_dataset(tmp_path / "ds", data)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "test.parquet", "train.parquet"]
    back = read_dataset(out)
    pd.testing.assert_frame_equal(back.train, data.train)
    pd.testing.assert_frame_equal(back.test, data.test)
    assert back.meta["formula"] == data.meta["formula"]
    assert set(back.meta["versions"]) >= {"numpy", "scipy", "sympy", "pandas", "python"}
    assert set(back.meta["checksums"]) == {"train.parquet", "test.parquet"}


def test_rerun_is_byte_identical(tmp_path):
    first = generate_to_dir("special", "jv", SMALL, 4, tmp_path / "a")
    second = generate_to_dir("special", "jv", SMALL, 4, tmp_path / "b")
    for name in ("train.parquet", "test.parquet", "meta.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def _fail_on_test_split(monkeypatch):
    original = pd.DataFrame.to_parquet

    def flaky(self, path, *args, **kwargs):
        if str(path).endswith("test.parquet"):
            raise OSError("disk full (simulated)")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", flaky)


def test_failed_write_leaves_nothing_and_rerun_succeeds(tmp_path, monkeypatch, data):
    target = tmp_path / "ds"
    with monkeypatch.context() as patch:
        _fail_on_test_split(patch)
        with pytest.raises(OSError, match="simulated"):
            write_dataset(target, data)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary sibling was removed too
    with pytest.raises(FileNotFoundError, match="not a complete dataset"):
        read_dataset(target)
    write_dataset(target, data)
    pd.testing.assert_frame_equal(read_dataset(target).train, data.train)


def test_failed_rewrite_keeps_previous_dataset(tmp_path, monkeypatch, data):
    target = write_dataset(tmp_path / "ds", data)
    newer = generate("feynman", "I.16.6", SMALL, seed=1)
    with monkeypatch.context() as patch:
        _fail_on_test_split(patch)
        with pytest.raises(OSError):
            write_dataset(target, newer)
    pd.testing.assert_frame_equal(read_dataset(target).train, data.train)
    write_dataset(target, newer)
    pd.testing.assert_frame_equal(read_dataset(target).train, newer.train)
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_checksum_mismatch_is_detected(tmp_path, data):
    target = write_dataset(tmp_path / "ds", data)
    data.train.iloc[:5].to_parquet(target / "train.parquet", index=False)
    with pytest.raises(ValueError, match="checksum mismatch for .*train.parquet"):
        read_dataset(target)


def test_missing_checksum_is_detected(tmp_path, data):
    target = write_dataset(tmp_path / "ds", data)
    meta = json.loads((target / "meta.json").read_text())
    del meta["checksums"]["test.parquet"]
    (target / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="checksum is missing"):
        read_dataset(target)


def test_write_rejects_incomplete_meta(tmp_path, data):
    del data.meta["targets"]
    with pytest.raises(ValueError, match="missing keys: targets"):
        write_dataset(tmp_path / "ds", data)
    assert not (tmp_path / "ds").exists()


def test_write_rejects_row_count_mismatch(tmp_path, data):
    data.meta["n_train"] = 31
    with pytest.raises(ValueError, match="train frame has 30 rows"):
        write_dataset(tmp_path / "ds", data)


def test_to_tensors_regression(data):
    tensors = to_tensors(data)
    assert tensors["train_input"].shape == (30, 2) and tensors["train_input"].dtype == torch.float64
    assert tensors["test_label"].shape == (20, 1)
    np.testing.assert_array_equal(tensors["train_label"][:, 0].numpy(), data.train["target"])
    assert to_tensors(data, dtype=torch.float32)["test_input"].dtype == torch.float32


def test_to_tensors_classification_gives_int64_indices():
    tensors = to_tensors(_classification_data([0, 2, 1, 2]))
    assert tensors["train_label"].dtype == torch.int64
    assert tensors["train_label"].tolist() == [0, 2, 1, 2]


@pytest.mark.parametrize("labels", [[0, 3, 1], [0, 1.5, 1], [-1, 0, 1]])
def test_to_tensors_rejects_bad_class_labels(labels):
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        to_tensors(_classification_data(labels))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_to_tensors_names_the_non_finite_column(data, bad):
    data.test.loc[3, "b"] = bad
    with pytest.raises(ValueError, match="column 'b' of the test split has 1 NaN/Inf"):
        to_tensors(data)


def test_unsupervised_labels_are_empty():
    tensors = to_tensors(generate("synthetic", "unsupervised_6var", SMALL, seed=0))
    assert tensors["train_input"].shape == (30, 6)
    assert tensors["train_label"].shape == (30, 0)


def test_versions_cover_generation_libraries():
    assert set(io.library_versions()) == {"python", "numpy", "scipy", "sympy", "pandas", "pyarrow"}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_write_rejects_non_finite_values_naming_task_column_and_count(tmp_path, data, bad):
    """A spec whose ranges leave the formula's domain gives NaN/Inf rows: nothing is written, and the
    message names the task, the column and how many values (it used to be written with a RuntimeWarning)."""
    data.train.loc[[2, 5, 7], "target"] = bad
    data.test.loc[1, "a"] = bad
    with pytest.raises(ValueError) as info:
        write_dataset(tmp_path / "ds", data)
    message = str(info.value)
    assert "feynman/I.16.6" in message
    assert "column 'target' of the train split has 3 of 30 values NaN or infinite" in message
    assert "column 'a' of the test split has 1 of 20" in message
    assert not (tmp_path / "ds").exists()


def test_rewrite_with_non_finite_values_keeps_the_previous_dataset(tmp_path, data):
    target = write_dataset(tmp_path / "ds", data)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    data.test.loc[0, "target"] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_dataset(target, data)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary folder left


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
def test_generated_data_outside_the_domain_is_rejected_before_writing(tmp_path):
    """feynman I.15.3x divides by sqrt(1 - b^2): b in [-2, 2] makes NaN targets."""
    with pytest.raises(ValueError, match=r"feynman/I\.15\.3x: column 'target' of the train split has \d+ of 30"):
        generate_to_dir("feynman", "I.15.3x", {**SMALL, "ranges": {"b": [-2, 2]}}, 0, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_definition_digest_names_what_defines_the_data_and_nothing_else(tmp_path, data):
    """The same on the written folder as in memory (checksums and library versions left out),
    unmoved by prose, different for other ranges, sizes or seeds."""
    written = read_dataset(generate_to_dir("feynman", "I.16.6", SMALL, 0, tmp_path / "d")).meta
    digest = definition_digest(data.meta)
    assert definition_digest(written) == digest and definition_of("feynman", "I.16.6", SMALL, 0) == digest
    assert definition_digest({**data.meta, "deviations": ["reworded"], "paper_shape": [2, 1]}) == digest
    narrower = {**SMALL, "ranges": {"a": [-0.5, 0.5], "b": [-1.0, 1.0]}}
    others = [generate("feynman", "I.16.6", narrower, 0), generate("feynman", "I.16.6", {**SMALL, "n_train": 31}, 0),
              generate("feynman", "I.16.6", SMALL, 1)]
    assert len({digest, *(definition_digest(other.meta) for other in others)}) == 4
