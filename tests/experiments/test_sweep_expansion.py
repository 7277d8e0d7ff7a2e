"""Sweep expansion: one run per grid phase, chunks that keep seeds together, dataset specs."""

from __future__ import annotations

import pytest

from kan.experiments.sweep import chunk_cost, chunk_priorities, chunks, data_spec, expand, experiment_order, total_steps


@pytest.fixture
def trainings(load):
    """``trainings(config)``: the expanded sweep of a config mapping."""
    return lambda config: expand(load(config))


def test_expansion_counts_variants_and_stages(tiny_config, trainings):
    trainings = trainings(tiny_config)
    variants = sorted(t.variant for t in trainings)
    assert variants == ["human", "human", "mlp", "mlp", "pruned", "pruned", "unpruned", "unpruned"]
    for training in trainings:
        assert len(training.stages) == (1 if training.kind == "mlp" else 2)
    ids = [s.run_id for t in trainings for s in t.stages]
    assert len(ids) == len(set(ids))


def test_stage_ids_are_the_ids_of_the_cut_schedule(tiny_config, trainings):
    kan = next(t for t in trainings(tiny_config) if t.variant == "unpruned")
    tiny_config["experiments"]["toy_scaling"]["train"]["grid_schedule"] = [3]
    short = next(t for t in trainings(tiny_config) if t.variant == "unpruned" and t.seed == kan.seed)
    assert kan.stages[0].run_id == short.stages[0].run_id
    assert [s.grid for s in kan.stages] == [3, 5]


def test_equal_values_give_equal_ids(tiny_config, trainings):
    before = [s.run_id for t in trainings(tiny_config) for s in t.stages]
    tiny_config["experiments"]["toy_scaling"]["train"]["lr"] = 1
    with_int = [s.run_id for t in trainings(tiny_config) for s in t.stages]
    tiny_config["experiments"]["toy_scaling"]["train"]["lr"] = 1.0
    with_float = [s.run_id for t in trainings(tiny_config) for s in t.stages]
    assert with_int == with_float != before


def test_training_round_trips_through_a_dict(tiny_config, trainings):
    from kan.experiments.sweep import Training

    for training in trainings(tiny_config):
        assert Training.from_dict(training.to_dict()) == training


def test_chunks_keep_seeds_together_and_respect_size(tiny_config, trainings):
    jobs = chunks(trainings(tiny_config), 2)
    assert list(jobs) == [f"toy_scaling/xy/{i}" for i in range(4)]
    for members in jobs.values():
        assert len(members) == 2 and members[0].group_key == members[1].group_key
        assert [t.seed for t in members] == [0, 1]


def test_total_steps_counts_the_sparsification_phase(tiny_config, trainings):
    steps = {t.variant: total_steps(t) for t in trainings(tiny_config)}
    assert steps == {"human": 4, "unpruned": 4, "mlp": 4, "pruned": 6}


def test_a_chunk_costs_steps_times_rows_times_inputs(tiny_config, trainings):
    sweep = trainings(tiny_config)
    assert chunk_cost(sweep) == sum(map(total_steps, sweep)) * 60 * 2  # xy: 60 training rows, inputs x and y


def test_the_experiment_with_the_costliest_chunk_trains_first(tiny_config, trainings):
    """Ranked by trainings alone, the many cheap xy trainings would start before the one
    100-input chunk, which would then end the run."""
    tiny_config["experiments"]["grid_extension"] = {
        "family": "synthetic", "datasets": ["exp_mean_sin2_100d"], "train": {"steps": 2, "grid_schedule": [3]},
        "kan": {"paper_shape": True}}
    jobs = chunks(trainings(tiny_config), 4)
    assert len(jobs["grid_extension/exp_mean_sin2_100d/0"]) == 1 < sum(len(j) for n, j in jobs.items() if "xy" in n)
    assert experiment_order(jobs) == ["grid_extension", "toy_scaling"]


def test_chunk_priorities_rank_experiments_and_in_shard_runs_datasets(tiny_config, trainings):
    """Experiments in experiment_order share a level each; by dataset, each dataset has its own
    level, all of an earlier experiment's above a later one's, in name order within one."""
    tiny_config["experiments"]["grid_extension"] = {
        "family": "synthetic", "datasets": ["exp_mean_sin2_100d"], "train": {"steps": 2, "grid_schedule": [3]},
        "kan": {"paper_shape": True}}
    tiny_config["experiments"]["toy_scaling"]["datasets"] = ["xy", "exp_sin_sq"]
    jobs = chunks(trainings(tiny_config), 4)
    assert chunk_priorities(jobs) == {"grid_extension/exp_mean_sin2_100d": 2, "toy_scaling/exp_sin_sq": 1,
                                      "toy_scaling/xy": 1}
    assert chunk_priorities(jobs, by_dataset=True) == {"grid_extension/exp_mean_sin2_100d": 3,
                                                       "toy_scaling/exp_sin_sq": 2, "toy_scaling/xy": 1}


def test_data_spec_merges_family_then_task(tiny_config, load):
    tiny_config["datasets"]["specs"]["synthetic/xy"] = {"n_test": 7}
    config = load(tiny_config)
    assert data_spec(config, "synthetic", "xy") == {"n_train": 60, "n_test": 7}
    assert data_spec(config, "feynman", "I.6.20") == {}


def test_mlp_seeds_replace_the_experiments_seeds_for_the_mlps_only(tiny_config, trainings):
    before = trainings(tiny_config)
    tiny_config["experiments"]["toy_scaling"]["mlp"]["seeds"] = [1]
    after = trainings(tiny_config)
    assert sorted(t.seed for t in after if t.kind == "mlp") == [1]
    assert [t for t in after if t.kind == "kan"] == [t for t in before if t.kind == "kan"]
    mlp_ids = {t.stages[-1].run_id for t in before if t.kind == "mlp"}
    assert {t.stages[-1].run_id for t in after if t.kind == "mlp"} < mlp_ids  # the same MLP, the same run id
