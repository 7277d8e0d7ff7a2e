"""Chunk training: per-run files, one run per grid phase, pruning, skipping finished work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kan.data import definition_digest, generate_to_dir, read_dataset
from kan.experiments import runner
from kan.experiments.sweep import expand
from kan.records.provenance import DATA_DEFINITION, code_fingerprint
from kan.records.runfiles import MODEL, read_history, read_metrics, run_dir, update_metrics
from kan.train import FitResult

RECORDED_KINDS = ("x86_64-AuthenticAMD-avx2", "x86_64-GenuineIntel-avx512")  # reports/reference/ci_expected.csv


@pytest.fixture(scope="module")
def trained(tiny_sweep, xy_dataset, tmp_path_factory):
    """(results folder, manifest) of the tiny sweep, trained once for the module."""
    results = tmp_path_factory.mktemp("results")
    return results, _train(tiny_sweep, xy_dataset, results)


def _train(trainings, xy_dataset, results):
    dirs = {("synthetic", "xy"): xy_dataset / "synthetic" / "xy"}
    return runner.train_chunk(trainings, dirs, results, {"profile": "test", "git_commit": "abc"})


def _dir(results, training, stage):
    return run_dir(results, training.experiment, training.kind, stage.run_id)


def test_every_stage_becomes_a_complete_run(tiny_sweep, trained):
    tmp_path, manifest = trained
    assert manifest["trained"] == len(tiny_sweep) == 8
    assert len(manifest["runs"]) == sum(len(t.stages) for t in tiny_sweep)
    for training in tiny_sweep:
        for stage in training.stages:
            metrics = read_metrics(_dir(tmp_path, training, stage))
            assert metrics["run_id"] == stage.run_id and metrics["status"] == "ok"
            assert metrics["grid"] == stage.grid and metrics["git_commit"] == "abc"
            history = read_history(_dir(tmp_path, training, stage))
            assert history["step"].tolist() == list(range(1, metrics["steps"] + 1))


def test_a_run_model_is_checked_against_its_recorded_digest(tiny_sweep, trained, tmp_path):
    """64 flipped bytes in the middle of model.pt loaded silently before (with an altered grid);
    loading a run's model now checks the sha256 its metrics.json recorded."""
    results, _ = trained
    training = tiny_sweep[0]
    original = _dir(results, training, training.stages[-1])
    copy = shutil.copytree(original, tmp_path / "run")
    assert runner.load_run_model(copy).num_parameters() == read_metrics(copy)["n_params"]  # intact: loads
    data = bytearray((copy / MODEL).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    (copy / MODEL).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the sha256 in its metrics.json"):
        runner.load_run_model(copy)


def test_pruned_runs_record_both_shapes(tiny_sweep, trained):
    tmp_path, _ = trained
    pruned = next(t for t in tiny_sweep if t.variant == "pruned")
    metrics = read_metrics(_dir(tmp_path, pruned, pruned.stages[-1]))
    initial, final = json.loads(metrics["initial_shape"]), json.loads(metrics["shape"])
    assert initial == [2, 3, 1] and len(final) == 3 and final[1] <= 3
    assert metrics["pruned_at_step"] == 2 and metrics["steps"] == 6 and metrics["lamb"] == 0.01


def test_stage_runs_equal_runs_of_the_cut_schedule(tiny_sweep, trained, tiny_config, load, xy_dataset, tmp_path):
    tiny_config["experiments"]["toy_scaling"]["train"]["grid_schedule"] = [3]
    cut = [t for t in expand(load(tiny_config)) if t.kind == "kan"]
    _train(cut, xy_dataset, tmp_path)
    for training in cut:
        (stage,) = training.stages
        full = next(t for t in tiny_sweep if t.stages[0].run_id == stage.run_id)  # same id: same run
        ours, theirs = read_metrics(_dir(trained[0], full, full.stages[0])), read_metrics(_dir(tmp_path, training, stage))
        assert ours["test_rmse"] == theirs["test_rmse"] and ours["shape"] == theirs["shape"]


def test_runs_name_their_training_as_the_plan_has_it(tiny_sweep, trained, tiny_config, load, xy_dataset, tmp_path):
    """A first phase recorded under the full schedule is the last stage of the cut schedule's
    training, and an earlier phase again when the schedule grows back: its record follows."""
    shutil.copytree(trained[0], tmp_path, dirs_exist_ok=True)
    tiny_config["experiments"]["toy_scaling"]["train"]["grid_schedule"] = [3]
    cut = [t for t in expand(load(tiny_config)) if t.kind == "kan"]
    full = {t.stages[0].run_id: t for t in tiny_sweep}
    assert _train(cut, xy_dataset, tmp_path)["trained"] == 0  # every first phase is on disk
    for training in cut:
        record = read_metrics(_dir(tmp_path, training, training.stages[0]))
        assert (record["training_id"], record["final_stage"]) == (training.stages[0].run_id, True)
    assert _train(tiny_sweep, xy_dataset, tmp_path)["trained"] == 0
    for training in cut:
        grown = full[training.stages[0].run_id]
        record = read_metrics(_dir(tmp_path, grown, grown.stages[0]))
        assert (record["training_id"], record["final_stage"]) == (grown.stages[-1].run_id, False)
        assert record == read_metrics(_dir(trained[0], grown, grown.stages[0]))  # nothing else changed
    assert runner.label_stages(tiny_sweep[0], tmp_path) == []


def test_runs_name_the_definition_of_their_data(tiny_sweep, trained, xy_dataset, tmp_path):
    """New runs record the definition digest of the dataset they trained on; a rerun of the chunk
    gives it to the records of its runs written before runs carried it, and to nothing else."""
    shutil.copytree(trained[0], tmp_path, dirs_exist_ok=True)
    definition = definition_digest(read_dataset(xy_dataset / "synthetic" / "xy").meta)
    runs = [_dir(tmp_path, t, s) for t in tiny_sweep for s in t.stages]
    assert {read_metrics(run)[DATA_DEFINITION] for run in runs} == {definition}
    older = runs[0]
    before = read_metrics(older)
    update_metrics(older, {DATA_DEFINITION: None})  # as a record of code that did not write it
    assert _train(tiny_sweep, xy_dataset, tmp_path)["trained"] == 0
    assert read_metrics(older) == before


def test_rerun_skips_finished_trainings(tiny_sweep, trained, xy_dataset, tmp_path):
    shutil.copytree(trained[0], tmp_path, dirs_exist_ok=True)
    assert _train(tiny_sweep, xy_dataset, tmp_path)["trained"] == 0
    lost = next(t for t in tiny_sweep if t.variant == "unpruned")
    last = _dir(tmp_path, lost, lost.stages[-1])
    for path in last.iterdir():
        path.unlink()
    last.rmdir()  # as if the job had been killed before the last phase finished
    assert _train(tiny_sweep, xy_dataset, tmp_path)["trained"] == 1


def test_divergence_ends_a_training_and_counts_as_done(tiny_sweep, xy_dataset, tmp_path, monkeypatch):
    def diverge(models, datasets, config):
        return [FitResult("diverged", "non-finite loss", [], 0.0) for _ in models]

    monkeypatch.setattr(runner, "fit_many", diverge)
    human = [t for t in tiny_sweep if t.variant == "human"]
    manifest = _train(human, xy_dataset, tmp_path)
    assert len(manifest["runs"]) == len(human)  # only the first phase's runs
    assert all(read_metrics(run)["status"] == "diverged" for run in manifest["runs"])
    assert all(runner.is_done(t, tmp_path) for t in human)


def test_runs_of_code_with_another_fingerprint_are_trained_again(tiny_sweep, trained, xy_dataset, tmp_path):
    """A shard's records count only while the code computes the same numbers: runs recorded
    under another code fingerprint are stale, and the chunk trains them again."""
    shutil.copytree(trained[0], tmp_path, dirs_exist_ok=True)
    human = [t for t in tiny_sweep if t.variant == "human"]
    dirs = {("synthetic", "xy"): xy_dataset / "synthetic" / "xy"}
    first = runner.train_chunk(human, dirs, tmp_path, {"code_fingerprint": "aaaa"})
    assert first["trained"] == len(human)  # the module's runs carry no fingerprint: stale
    assert runner.train_chunk(human, dirs, tmp_path, {"code_fingerprint": "aaaa"})["trained"] == 0
    again = runner.train_chunk(human, dirs, tmp_path, {"code_fingerprint": "bbbb"})
    assert again["trained"] == len(human)
    assert {read_metrics(run)["code_fingerprint"] for run in again["runs"]} == {"bbbb"}


def test_trainings_published_elsewhere_are_neither_trained_nor_listed(tiny_sweep, xy_dataset, tmp_path):
    """A shard on a fresh machine (no run folders) with the ids of trainings already published."""
    human = [t for t in tiny_sweep if t.variant == "human"]
    elsewhere = {human[0].stages[-1].run_id}
    dirs = {("synthetic", "xy"): xy_dataset / "synthetic" / "xy"}
    manifest = runner.train_chunk(human, dirs, tmp_path, {}, done_elsewhere=elsewhere)
    assert (manifest["trained"], manifest["published"]) == (len(human) - 1, 1)
    assert not _dir(tmp_path, human[0], human[0].stages[0]).exists()
    assert {read_metrics(run)["training_id"] for run in manifest["runs"]} == {t.stages[-1].run_id for t in human[1:]}
    everything = runner.train_chunk(human[:1], dirs, tmp_path, {}, done_elsewhere=elsewhere)
    assert everything == {"trainings": 1, "trained": 0, "published": 1, "runs": []}


def test_a_training_with_a_lost_earlier_phase_is_trained_again(tiny_sweep, trained, xy_dataset, tmp_path):
    shutil.copytree(trained[0], tmp_path, dirs_exist_ok=True)
    lost = next(t for t in tiny_sweep if t.variant == "unpruned")
    shutil.rmtree(_dir(tmp_path, lost, lost.stages[0]))  # the G = 3 run of a training whose G = 5 run is there
    assert not runner.is_done(lost, tmp_path)
    again = _train(tiny_sweep, xy_dataset, tmp_path)
    assert again["trained"] == 1 and _dir(tmp_path, lost, lost.stages[0]).is_dir()


def test_runs_made_from_other_data_are_stale(tiny_sweep, trained, xy_dataset, tmp_path):
    shutil.copytree(trained[0], tmp_path, dirs_exist_ok=True)
    regenerated = tmp_path / "datasets" / "synthetic" / "xy"
    generate_to_dir("synthetic", "xy", {"n_train": 60, "n_test": 40}, 1, regenerated)  # another seed: other data
    extra, dirs = {"profile": "test", "git_commit": "abc"}, {("synthetic", "xy"): regenerated}
    old, new = (runner.load_dataset(d, "float64")[0] for d in (xy_dataset / "synthetic" / "xy", regenerated))
    assert {read_metrics(run)["data_digest"] for run in trained[1]["runs"]} == {runner.data_digest(old)}
    for run in trained[1]["runs"]:  # records from before data digests were kept count as made from any data
        path = tmp_path / Path(run).relative_to(trained[0])
        record = read_metrics(path)
        del record["data_digest"]
        (path / "metrics.json").write_text(json.dumps(record))
    assert runner.train_chunk(tiny_sweep, dirs, tmp_path, extra)["trained"] == 0
    shutil.rmtree(tmp_path / "runs")
    shutil.copytree(trained[0] / "runs", tmp_path / "runs")  # recorded from the old data
    again = runner.train_chunk(tiny_sweep, dirs, tmp_path, extra)
    assert again["trained"] == len(tiny_sweep)
    assert {read_metrics(run)["data_digest"] for run in again["runs"]} == {runner.data_digest(new)}


def test_runs_of_another_machine_kind_count_with_that_kinds_fingerprint(tiny_sweep, trained, xy_dataset, tmp_path):
    """A shard resumed on another kind of CPU keeps what the first kind finished, as long as the
    code computes the same numbers there (its fingerprint for that kind)."""
    shutil.copytree(trained[0], tmp_path, dirs_exist_ok=True)
    other = "x86_64-AuthenticAMD-avx2"
    runs = {"current": code_fingerprint(other), "stale": "0123456789abcdef"}
    for run in trained[1]["runs"]:
        path = tmp_path / Path(run).relative_to(trained[0])
        record = read_metrics(path)
        (path / "metrics.json").write_text(json.dumps({**record, "machine": other, "code_fingerprint": runs["current"]}))
    data = runner.load_dataset(xy_dataset / "synthetic" / "xy", "float64")[0]
    here = {"machine": "x86_64-GenuineIntel-avx512", "code_fingerprint": "fedcba9876543210"}
    assert code_fingerprint(other) not in ("unrecorded", "unknown")
    assert all(runner.is_done(t, tmp_path, runner.currency(here, runner.data_digest(data))) for t in tiny_sweep)
    stale = next(t for t in tiny_sweep if t.kind == "mlp")
    path = _dir(tmp_path, stale, stale.stages[-1])
    (path / "metrics.json").write_text(json.dumps({**read_metrics(path), "code_fingerprint": runs["stale"]}))
    assert not runner.is_done(stale, tmp_path, runner.currency(here, runner.data_digest(data)))
    assert path not in runner.existing_runs([stale], tmp_path, runner.currency(here, runner.data_digest(data)))


@pytest.mark.parametrize("variant", ["unpruned", "pruned"])
def test_a_training_killed_after_a_phase_goes_on_from_there_with_the_same_results(
        variant, tiny_sweep, trained, xy_dataset, tmp_path, monkeypatch):
    shutil.copytree(trained[0], tmp_path, dirs_exist_ok=True)
    training = next(t for t in tiny_sweep if t.variant == variant)
    last = _dir(tmp_path, training, training.stages[-1])
    shutil.rmtree(last)  # killed during its last grid phase
    phases = []
    original = runner._run_phase
    monkeypatch.setattr(runner, "_run_phase", lambda states, *rest: (phases.append(len(states)), original(states, *rest)))
    assert _train(tiny_sweep, xy_dataset, tmp_path)["trained"] == 1
    assert phases == [1]  # only the last phase ran: no sparsification, no first phase
    expected = _dir(trained[0], training, training.stages[-1])
    assert read_history(last).equals(read_history(expected))
    resumed, uninterrupted = read_metrics(last), read_metrics(expected)
    for key in ("train_rmse", "test_rmse", "steps", "shape", "initial_shape", "pruned_at_step", "model_sha256"):
        assert resumed[key] == uninterrupted[key], key


def _kill_in_the_last_phase(trainings, xy_dataset, results, monkeypatch) -> list[int]:
    """Train ``trainings`` until a kill in their last phase (after sparsification and the first
    phase); the sizes of the phase calls made, a list later calls may go on filling."""
    original, calls = runner._run_phase, []

    def killed_in_the_last_phase(states, *rest):
        calls.append(len(states))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(states, *rest)

    monkeypatch.setattr(runner, "_run_phase", killed_in_the_last_phase)
    with pytest.raises(KeyboardInterrupt):
        _train(trainings, xy_dataset, results)
    return calls


def test_an_mlp_killed_between_phases_goes_on_from_its_checkpoint_with_the_same_results(
        tiny_sweep, trained, xy_dataset, tmp_path, monkeypatch):
    mlps = [t for t in tiny_sweep if t.kind == "mlp"]
    original = runner._run_phase
    calls = _kill_in_the_last_phase(tiny_sweep, xy_dataset, tmp_path, monkeypatch)
    for training in mlps:
        assert not _dir(tmp_path, training, training.stages[0]).exists()
        assert read_metrics(runner.checkpoint_dir(tmp_path, training))[runner.PHASES_DONE] == 1
    monkeypatch.setattr(runner, "_run_phase", lambda states, *rest: (calls.append(len(states)), original(states, *rest)))
    _train(tiny_sweep, xy_dataset, tmp_path)
    assert calls[3:] == [len(tiny_sweep)]  # one call: every training resumed into the last phase
    for training in mlps:
        resumed, expected = _dir(tmp_path, training, training.stages[0]), _dir(trained[0], training, training.stages[0])
        assert read_history(resumed).equals(read_history(expected))
        assert {k: read_metrics(resumed)[k] for k in ("train_rmse", "test_rmse", "steps", "model_sha256")} == {
            k: read_metrics(expected)[k] for k in ("train_rmse", "test_rmse", "steps", "model_sha256")}
        assert not runner.checkpoint_dir(tmp_path, training).exists()


def test_a_training_killed_on_another_machine_kind_starts_afresh(tiny_sweep, trained, xy_dataset, tmp_path, monkeypatch):
    """Its finished phases count (the code computes the same numbers there), but going on from them
    would record phases of two kinds as of one: it retrains every phase on this kind."""
    shutil.copytree(trained[0], tmp_path, dirs_exist_ok=True)
    training = next(t for t in tiny_sweep if t.variant == "unpruned")
    shutil.rmtree(_dir(tmp_path, training, training.stages[-1]))  # killed during its last grid phase
    here = runner.machine_kind()
    other = next(kind for kind in RECORDED_KINDS if kind != here)  # a kind whose fingerprint is recorded
    for stage in training.stages[:-1]:
        path = _dir(tmp_path, training, stage)
        (path / "metrics.json").write_text(json.dumps({**read_metrics(path), "machine": other,
                                                       "code_fingerprint": code_fingerprint(other)}))
    phases = []
    original = runner._run_phase
    data = runner.load_dataset(xy_dataset / "synthetic" / "xy", "float64")[0]
    counts = runner.currency({"machine": here}, runner.data_digest(data))
    assert runner.resumed_state(training, tmp_path, counts, other) is not None  # it would resume on its own kind
    dirs = {("synthetic", "xy"): xy_dataset / "synthetic" / "xy"}

    def killed(states, *rest):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_run_phase", killed)
    with pytest.raises(KeyboardInterrupt):  # killed at once: the other kind's phases are gone, none is mixed in
        runner.train_chunk(tiny_sweep, dirs, tmp_path, {"profile": "test", "machine": here})
    assert not any(_dir(tmp_path, training, stage).exists() for stage in training.stages)
    monkeypatch.setattr(runner, "_run_phase", lambda states, *rest: (phases.append(len(states)), original(states, *rest)))
    assert runner.train_chunk(tiny_sweep, dirs, tmp_path, {"profile": "test", "machine": here})["trained"] == 1
    assert phases == [1] * len(training.stages)  # every phase again, not only the last
    for stage in training.stages:
        assert read_metrics(_dir(tmp_path, training, stage))["machine"] == here
        assert read_history(_dir(tmp_path, training, stage)).equals(read_history(_dir(trained[0], training, stage)))


def test_an_mlp_checkpoint_of_another_machine_kind_is_not_resumed(tiny_sweep, trained, xy_dataset, tmp_path, monkeypatch):
    mlp = next(t for t in tiny_sweep if t.kind == "mlp")
    _kill_in_the_last_phase(tiny_sweep, xy_dataset, tmp_path, monkeypatch)
    checkpoint = runner.checkpoint_dir(tmp_path, mlp)
    (checkpoint / "metrics.json").write_text(json.dumps({**read_metrics(checkpoint), "machine": "riscv64-other"}))
    data = runner.load_dataset(xy_dataset / "synthetic" / "xy", "float64")[0]
    counts = runner.currency({}, runner.data_digest(data))
    assert runner.resumed_state(mlp, tmp_path, counts, "riscv64-other") is not None
    assert runner.resumed_state(mlp, tmp_path, counts) is None  # this machine: starts afresh
