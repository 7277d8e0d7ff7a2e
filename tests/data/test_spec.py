"""Spec merging and validation shared by all families."""

import math

import numpy as np
import pytest

from kan.data.spec import lookup_task, make_rng, merge_spec

DEFAULTS = {
    "n_train": 100,
    "n_test": 50,
    "width": 0.5,
    "ranges": {"x": [-1.0, 1.0], "y": [0.0, 2.0]},
}


def test_defaults_returned_when_no_overrides():
    merged = merge_spec(DEFAULTS, None, where="fam/task")
    assert merged == DEFAULTS
    merged["ranges"]["x"][0] = 5.0
    assert DEFAULTS["ranges"]["x"][0] == -1.0  # defaults are not aliased


def test_overrides_replace_values_and_partial_ranges():
    merged = merge_spec(DEFAULTS, {"n_train": 7, "width": 2, "ranges": {"y": (1, 3)}}, where="w")
    assert merged["n_train"] == 7 and merged["n_test"] == 50
    assert merged["width"] == 2.0 and isinstance(merged["width"], float)
    assert merged["ranges"] == {"x": [-1.0, 1.0], "y": [1.0, 3.0]}


def test_unknown_key_is_named_with_valid_keys():
    match = r"unknown key 'n_trian' in spec for feynman/I\.6\.20; valid keys: n_train, n_test"
    with pytest.raises(ValueError, match=match):
        merge_spec(DEFAULTS, {"n_trian": 3}, where="feynman/I.6.20")


def test_unknown_range_variable():
    with pytest.raises(ValueError, match="unknown variable 'z'"):
        merge_spec(DEFAULTS, {"ranges": {"z": [0, 1]}}, where="w")


BAD_BOUNDS = [[1, 1], [2, 1], [0, math.inf], [math.nan, 1], [0], "ab", [0, "1"]]


@pytest.mark.parametrize("bounds", BAD_BOUNDS)
def test_bad_ranges(bounds):
    with pytest.raises(ValueError, match="range of 'x'"):
        merge_spec(DEFAULTS, {"ranges": {"x": bounds}}, where="w")


@pytest.mark.parametrize("size", [0, -5, 10**9, 2.5, True, "10"])
def test_bad_sizes(size):
    with pytest.raises(ValueError, match="'n_test'"):
        merge_spec(DEFAULTS, {"n_test": size}, where="w")


@pytest.mark.parametrize("value", ["wide", math.nan, None])
def test_bad_typed_value(value):
    with pytest.raises(ValueError, match="'width'"):
        merge_spec(DEFAULTS, {"width": value}, where="w")


def test_spec_must_be_mapping():
    with pytest.raises(ValueError, match="must be a mapping"):
        merge_spec(DEFAULTS, [("n_train", 3)], where="w")


def test_lookup_task_lists_choices():
    assert lookup_task({"a": 1, "b": 2}, "b", family="fam") == 2
    with pytest.raises(ValueError, match="unknown task 'c' for family 'fam'; valid tasks: a, b"):
        lookup_task({"a": 1, "b": 2}, "c", family="fam")


def test_make_rng_is_seeded_and_validated():
    assert make_rng(3).random() == np.random.default_rng(3).random()
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="seed"):
            make_rng(bad)
