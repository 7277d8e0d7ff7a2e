"""Family registry: lookup errors, determinism of every task, on-disk generation."""

import pandas as pd
import pytest

from kan.data import (
    FAMILIES,
    code_digest,
    dataset_dir,
    family_module,
    generate,
    generate_to_dir,
    read_dataset,
    task_names,
)

SMALL = {"n_train": 16, "n_test": 8}
SMALL_SPECS = {
    "synthetic": SMALL,
    "feynman": SMALL,
    "special": SMALL,
    "anderson": {"n_sites": 34, "n_realizations": 2, "n_train": 40, "n_test": 20},
}
CASES = [(family, name) for family in SMALL_SPECS for name in task_names(family)]


def _spec(family, name):
    return {"n_per_phase": 4, "n_test": 8} if name == "gaussian_peaks" else SMALL_SPECS[family]


def test_families_and_task_counts():
    assert FAMILIES == ("synthetic", "feynman", "special", "knot", "anderson")
    assert len(task_names("feynman")) == 27
    assert len(task_names("special")) == 15
    assert task_names("anderson") == ["mosaic", "gaam", "maam"]


def test_unknown_family_lists_choices():
    match = "unknown data family 'feynmann'; valid families: synthetic, feynman"
    for call in (family_module, code_digest):
        with pytest.raises(ValueError, match=match):
            call("feynmann")


def test_each_family_has_its_own_generator_digest():
    """The data rule regenerates a family's datasets when this digest changes (its module(s) or
    the shared ones), and only that family's."""
    digests = {family: code_digest(family) for family in FAMILIES}
    assert len(set(digests.values())) == len(FAMILIES) and all(len(d) == 16 for d in digests.values())
    assert code_digest("knot") == code_digest("knot")  # stable between calls


def test_unknown_task_lists_choices():
    match = r"unknown task 'I\.99' for family 'feynman'; valid tasks: I\.6\.20, "
    with pytest.raises(ValueError, match=match):
        generate("feynman", "I.99", None, 0)


@pytest.mark.parametrize(("family", "name"), CASES)
def test_generation_is_deterministic_in_the_seed(family, name):
    spec = _spec(family, name)
    first, again, other = (generate(family, name, spec, seed) for seed in (0, 0, 1))
    pd.testing.assert_frame_equal(first.train, again.train)
    pd.testing.assert_frame_equal(first.test, again.test)
    assert first.meta == again.meta
    assert not first.train.equals(other.train)
    for frame, n in ((first.train, first.meta["n_train"]), (first.test, first.meta["n_test"])):
        assert len(frame) == n
        assert list(frame.columns[: len(first.meta["inputs"])]) == first.meta["inputs"]
    assert first.meta["family"] == family and first.meta["name"] == name
    assert first.meta["deviations"] and all(isinstance(d, str) for d in first.meta["deviations"])


def test_generate_to_dir_writes_a_readable_dataset(tmp_path):
    out = generate_to_dir("synthetic", "xy", SMALL, 3, dataset_dir(tmp_path, "synthetic", "xy"))
    assert out == tmp_path / "generated" / "synthetic" / "xy"
    back = read_dataset(out)
    assert back.meta["seed"] == 3 and back.meta["spec"]["n_train"] == 16
    assert back.meta["formula"] == "x*y"


def test_generate_to_dir_rejects_bad_spec_without_writing(tmp_path):
    with pytest.raises(ValueError, match=r"bad range of 'x' for synthetic/xy"):
        generate_to_dir("synthetic", "xy", {"ranges": {"x": [1, -1]}}, 0, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
