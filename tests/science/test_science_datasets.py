"""Science experiments on pre-generated dataset folders (as the pipeline runs them) give exactly
what generating the data in memory gives; the registry names the folders each one reads."""

import pandas as pd
import pytest

from kan.data import DatasetRequest, generate_to_dir
from kan.science import knots, registry

LOCALIZATION = {"systems": ["mosaic"], "n_sites": 21, "n_realizations": 12, "n_train": 150, "n_test": 80, "steps": 3,
                "retrain_steps": 2, "symbolic_samples": 40}
KNOTS = knots.KnotConfig(source="snappy", split_seed=1)


def _generate(request: DatasetRequest, root) -> str:
    """The folder the data rule would write for ``request`` below ``root``."""
    return str(generate_to_dir(request.family, request.name, dict(request.spec), request.seed, root / request.key))


def test_registry_names_the_datasets_each_experiment_reads(tmp_path):
    (localization,) = registry.datasets("localization", LOCALIZATION)
    assert localization == DatasetRequest("anderson", "mosaic", {"n_sites": 21, "n_realizations": 12, "n_train": 150,
                                                                  "n_test": 80}, 0)
    assert [r.key for r in registry.datasets("localization", {})] == ["anderson/mosaic", "anderson/gaam", "anderson/maam"]
    settings = {"source": "snappy", "split_seed": 2, "extra": {"val_fraction": 0.2}}
    assert registry.datasets("knots", settings) == [DatasetRequest("knot", "snappy", {"dedup": True, "val_fraction": 0.2}, 2)]
    fallback = registry.datasets("knots", {"path": str(tmp_path / "absent"), "fallback_source": "snappy"})
    assert fallback == [DatasetRequest("knot", "snappy", {"dedup": True}, 0)]  # the decision is in the request
    assert registry.datasets("pde", {}) == []


def test_localization_on_a_dataset_folder_equals_the_in_memory_run(tmp_path):
    (request,) = registry.datasets("localization", LOCALIZATION)
    folders = {request.key: _generate(request, tmp_path / "datasets")}
    from_folder = registry.run("localization", LOCALIZATION, tmp_path / "folder", folders)
    in_memory = registry.run("localization", LOCALIZATION, tmp_path / "memory")
    assert from_folder == in_memory and "mosaic.kan.accuracy" in from_folder
    tables = [pd.read_csv(tmp_path / run / "tables" / "accuracy.csv") for run in ("folder", "memory")]
    pd.testing.assert_frame_equal(*tables, check_exact=True)


def test_knot_data_from_a_folder_equal_the_in_memory_split(tmp_path):
    folder = _generate(KNOTS.dataset(), tmp_path)
    read, generated = knots.load_knot_data(KNOTS, folder), knots.load_knot_data(KNOTS)
    for part in ("fit", "val", "test"):
        pd.testing.assert_frame_equal(getattr(read, part), getattr(generated, part), check_exact=True)
    assert read.classes == generated.classes and read.meta["name"] == "snappy"
    with pytest.raises(ValueError, match="seed is 1, not 0"):
        knots.load_knot_data(knots.KnotConfig(source="snappy"), folder)


def test_folders_must_be_exactly_what_the_experiment_reads(tmp_path):
    with pytest.raises(ValueError, match=r"reads the datasets \['anderson/mosaic'\], got folders for \['anderson/gaam'\]"):
        registry.run("localization", LOCALIZATION, tmp_path, {"anderson/gaam": str(tmp_path)})
    with pytest.raises(ValueError, match="reads the datasets none"):
        registry.run("pde", {}, tmp_path, {"anderson/mosaic": str(tmp_path)})
    assert not any(tmp_path.iterdir())  # refused before anything was written
