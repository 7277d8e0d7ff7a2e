"""The science registry: settings checked against the option dataclasses, one runner contract,
the files every experiment writes, and the knot data fallback."""

import json

import pytest

from kan.data.knot import TASKS
from kan.records.provenance import UNKNOWN, UNRECORDED
from kan.science import localization, registry, runners
from kan.science.knots import KnotConfig
from kan.science.options import freeze


def test_every_experiment_resolves_its_defaults():
    for name in registry.REGISTRY:
        values = registry.resolve_settings(name, {})
        assert values and all(not isinstance(v, list) for v in values.values()), name


def test_unknown_key_names_the_key_and_the_experiment():
    with pytest.raises(ValueError) as info:
        registry.run("pde", {"n_interiour": 10}, "/nonexistent")
    message = str(info.value)
    assert "'n_interiour'" in message and "'pde'" in message and "n_interior" in message  # valid options listed


@pytest.mark.parametrize(("name", "settings", "named"), [
    ("pde", {"mlp_activation": "gelu"}, "mlp_activation must be one of tanh, relu, silu, sigmoid, got 'gelu'"),
    ("unsupervised", {"dtype": "float65"}, "dtype must be one of float32, float64, got 'float65'"),
    ("continual", {"kan_base_activation": "foo"}, "kan_base_activation must be one of silu, identity, zero"),
    ("knots", {"source": "deepmnd"}, "source must be one of deepmind, snappy, got 'deepmnd'"),
])
def test_a_named_choice_outside_its_set_is_an_error_before_any_job(name, settings, named):
    """These failed only inside the job (PDE's activation after every KAN phase had trained)."""
    with pytest.raises(ValueError, match=f"science experiment '{name}': {named}"):
        registry.resolve_settings(name, settings)


def test_bad_value_and_unknown_experiment_are_errors():
    with pytest.raises(ValueError, match="continual.*optimizer"):
        registry.resolve_settings("continual", {"optimizer": "sgd"})
    with pytest.raises(ValueError, match="systems"):
        registry.resolve_settings("localization", {"systems": ["mosaic", "nope"]})
    with pytest.raises(ValueError, match="unknown science experiment 'pdes'"):
        registry.resolve_settings("pdes", {})


def test_settings_are_split_over_the_option_classes_and_frozen():
    values = registry.resolve_settings("unsupervised", {"seeds": [3, 4], "steps": 7})
    assert values["seeds"] == (3, 4) and values["steps"] == 7 and values["n_samples"] == 1000
    assert freeze({"a": [[1, 2], [3]]}) == {"a": ((1, 2), (3,))}


def test_knot_fallback_only_when_the_deepmind_data_are_missing(tmp_path):
    missing = KnotConfig(path=str(tmp_path / "absent"))
    assert runners.knot_source(missing, runners.KnotSource("snappy")).source == "snappy"
    assert runners.knot_source(missing, runners.KnotSource()) is missing  # no fallback: the loader will fail
    (tmp_path / "present").mkdir()
    present = KnotConfig(path=str(tmp_path / "present"))
    assert runners.knot_source(present, runners.KnotSource("snappy")) is present
    with pytest.raises(ValueError, match="fallback_source"):
        runners.KnotSource("nope")
    assert set(TASKS) == {"deepmind", "snappy"}


def test_run_writes_tables_figures_and_the_summary(tmp_path):
    settings = {"seeds": [0], "steps_per_phase": 2, "n_per_phase": 30, "n_grid": 100, "kan_grid": 20, "mlp_width": [1, 8, 1]}
    summary = registry.run_recorded("continual", settings, tmp_path, profile="test")
    assert json.loads((tmp_path / "summary.json").read_text()) == pytest.approx(summary)
    assert {"kan.forgetting", "mlp.forgetting", "mlp_over_kan.forgetting"} <= set(summary)
    assert summary["mlp_over_kan.forgetting"] == pytest.approx(summary["mlp.forgetting"] / summary["kan.forgetting"])
    assert {p.name for p in (tmp_path / "tables").iterdir()} >= {"forgetting.csv", "forgetting.md", "phases.csv"}
    assert (tmp_path / "figures" / "continual.png").stat().st_size > 1000
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["experiment"] == "continual" and record["profile"] == "test" and len(record["config_id"]) == 12
    assert record["settings"]["seeds"] == [0] and record["settings"]["optimizer"] == "lbfgs"  # defaults recorded


def test_knot_download_reads_the_download_folder_and_keeps_the_path_as_offline_fallback(tmp_path):
    from kan.data.knot_download import DOWNLOAD_DIR

    config = KnotConfig(path=str(tmp_path / "subset"))
    (request,) = runners.knot_datasets(config, runners.KnotSource(download=True))
    assert (request.name, request.spec["path"], request.spec["offline_path"]) == ("deepmind", DOWNLOAD_DIR, config.path)
    assert runners.knot_source(KnotConfig(source="snappy"), runners.KnotSource(download=True)).source == "snappy"


@pytest.mark.parametrize("commit, fingerprint, by_fingerprint", [
    ("0123abcd", "f00d", True),  # clean checkout, numbers recorded: an edit that keeps them keeps the stages
    ("0123abcd-dirty", "f00d", False),  # uncommitted edits: the fingerprint cannot see them
    ("0123abcd", UNRECORDED, False),  # no recorded numbers on this machine kind
    (UNKNOWN, "f00d", False),  # not a git checkout
])
def test_stages_follow_the_recorded_numbers_only_where_they_can(monkeypatch, tmp_path, commit, fingerprint, by_fingerprint):
    monkeypatch.setattr(registry, "git_commit", lambda: commit)
    monkeypatch.setattr(registry, "code_fingerprint", lambda science: fingerprint)
    folders = []
    for source in ("source-a", "source-b"):  # an edit of the source between a kill and the rerun
        monkeypatch.setattr(registry, "source_digest", lambda: source)
        folders.append(registry.stage_folder("pde", {}, tmp_path))
    assert (folders[0] == folders[1]) == by_fingerprint
    assert registry.stage_code("pde") == ("fingerprint:f00d" if by_fingerprint else "source:source-b")


@pytest.mark.slow
def test_a_resumed_recorded_run_counts_its_kept_stages_and_then_forgets_them(tmp_path):
    import pickle

    from kan.science.stages import Stages

    settings = {"n_interior": 150, "n_boundary": 40, "kan_width": [2, 3, 1], "kan_grids": [3, 6], "kan_steps": 2,
                "mlp_widths": [[2, 5, 1]], "n_test_per_side": 11}
    partial = tmp_path / "partial"
    folder = registry.stage_folder("pde", settings, partial)
    assert folder == registry.stage_folder("pde", {**settings}, partial) != registry.stage_folder(
        "pde", {**settings, "kan_steps": 3}, partial)
    registry.run("pde", settings, tmp_path / "first", stages=Stages(folder))  # a run that left all its stages
    assert Stages(folder).finished() == ["kan-0-G3", "kan-1-G6", "mlp-0"]
    kept_cpu = sum(pickle.loads(path.read_bytes())["cpu_seconds"] for path in folder.glob("*.pkl"))
    summary = registry.run_recorded("pde", settings, tmp_path / "out", profile="test", partial=partial)
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert summary == pytest.approx(json.loads((tmp_path / "first" / "summary.json").read_text()))
    assert record["cpu_seconds"] >= kept_cpu > 0 and not folder.exists()  # the kept stages' time counted, then removed


@pytest.mark.slow
def test_a_run_with_workers_gives_the_same_summary_and_records_their_cpu_time(tmp_path, monkeypatch):
    from kan.science.stages import Stages

    settings = {"n_interior": 150, "n_boundary": 40, "kan_width": [2, 3, 1], "kan_grids": [3], "kan_steps": 2,
                "mlp_widths": [[2, 5, 1], [2, 8, 8, 1], [2, 4, 1]], "n_test_per_side": 11}
    alone = registry.run_recorded("pde", settings, tmp_path / "alone", profile="test", partial=tmp_path / "p1")
    made = []
    monkeypatch.setattr(registry, "Stages", lambda *args: made.append(Stages(*args)) or made[-1])
    together = registry.run_recorded("pde", settings, tmp_path / "together", profile="test", partial=tmp_path / "p2",
                                     workers=2)
    record = json.loads((tmp_path / "together" / "run.json").read_text())
    assert together == alone  # the errors of every model, bit for bit
    assert made[0].workers == 2 and record["cpu_seconds"] >= made[0].worker_cpu_seconds > 0


def test_experiments_that_sample_their_own_data_list_its_deviations_with_their_own():
    """The report gets these from the registry (no dataset folder carries them): each experiment's
    method notes first, then the notes of the synthetic tasks it samples itself."""
    found = registry.science_deviations(["continual", "interpretability", "knots"])
    assert found[0].startswith("continual (§3.5): only the KAN's spline coefficients train")
    assert found[1].startswith("synthetic/gaussian_peaks: ")
    assert any(line.startswith("synthetic/x_div_y: x, y uniform on [0.5, 2]") for line in found)
    assert not [line for line in found if line.startswith("knots")], "knots' choices are in the profiles' configs"
    with pytest.raises(ValueError, match="unknown science experiment 'pdes'"):
        registry.science_deviations(["pdes"])


def test_the_mobility_edge_deviation_names_each_systems_library():
    text = " ".join(localization.DEVIATIONS)
    for name, system in localization.SYSTEMS.items():
        label = "Mosaic" if name == "mosaic" else name.upper()
        assert f"{label}: {', '.join(system.library)}" in text, name
