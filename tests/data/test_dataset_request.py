"""Dataset requests: a folder read back equals the in-memory data, a folder from another spec or
seed is refused, two consumers cannot want one folder with different specs; the knot fallback."""

import pandas as pd
import pytest

from kan.data import DatasetRequest, generate_to_dir, knot, with_requests

REQUEST = DatasetRequest("anderson", "mosaic", {"n_sites": 21, "n_realizations": 10, "n_train": 60, "n_test": 40}, 3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("datasets") / REQUEST.key
    return generate_to_dir(REQUEST.family, REQUEST.name, dict(REQUEST.spec), REQUEST.seed, out)


def test_folder_and_memory_give_the_same_frames(folder):
    in_memory, on_disk = REQUEST.load(), REQUEST.load(folder)
    for split in ("train", "test"):
        pd.testing.assert_frame_equal(getattr(on_disk, split), getattr(in_memory, split), check_exact=True)
    assert REQUEST.load(in_memory) is in_memory


@pytest.mark.parametrize("other, message", [
    (DatasetRequest("anderson", "mosaic", {**REQUEST.spec, "n_train": 50}, 3), "spec 'n_train' is 60, not 50"),
    (DatasetRequest("anderson", "mosaic", REQUEST.spec, 4), "seed is 3, not 4"),
    (DatasetRequest("anderson", "gaam", REQUEST.spec, 3), "task is 'anderson/mosaic', not 'anderson/gaam'"),
])
def test_a_folder_of_another_spec_seed_or_task_is_refused(folder, other, message):
    with pytest.raises(ValueError, match=f"does not match {other.key}: {message}"):
        other.load(folder)


def test_requests_join_the_data_rules_table_and_conflicts_are_errors():
    table = {("synthetic", "xy"): {"spec": {"n_train": 10}, "seed": 0}}
    merged = with_requests(table, [REQUEST, REQUEST])
    assert merged == {**table, ("anderson", "mosaic"): {"spec": dict(REQUEST.spec), "seed": 3}}
    clash = DatasetRequest("synthetic", "xy", {"n_train": 20}, 0)
    with pytest.raises(ValueError, match="synthetic/xy is wanted with two different specs"):
        with_requests(table, [clash])


def test_knot_fallback_is_decided_by_the_data_layer(tmp_path):
    missing, present = tmp_path / "absent", tmp_path / "present"
    present.mkdir()
    assert knot.available_task("deepmind", str(missing), "snappy") == "snappy"
    assert knot.available_task("deepmind", str(present), "snappy") == "deepmind"
    assert knot.available_task("deepmind", str(missing), None) == "deepmind"  # no fallback: generating fails
    assert knot.available_task("snappy", None, "deepmind") == "snappy"  # only DeepMind's data fall back
