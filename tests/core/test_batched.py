"""Batched training: stacked forward/gradients/grid updates and fit_many semantics."""

import copy
import math

import pytest
import torch

from kan import KAN, MLP, layers, load_model, native
from kan.batched import fit_many, group_indices
from kan.batched_layers import StackedKAN, StackedMLP
from kan.prune import prune
from kan.train import TrainConfig, fit

F64 = torch.float64


def _data(n=300, n_in=2, seed=0, fn=None):
    fn = fn or (lambda x: torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:2] ** 2))
    gen = torch.Generator().manual_seed(seed)
    x_train = torch.rand(n, n_in, dtype=F64, generator=gen) * 2 - 1
    x_test = torch.rand(n, n_in, dtype=F64, generator=gen) * 2 - 1
    return {"train_input": x_train, "train_label": fn(x_train), "test_input": x_test, "test_label": fn(x_test)}


def _kans(width, count, num_intervals=3, masked=False):
    """KANs with per-model, per-input grids (fit to differently scaled data) and optional masks."""
    models = []
    for seed in range(count):
        model = KAN(width, num_intervals=num_intervals, dtype=F64, seed=seed)
        x = _data(200, width[0], seed=seed)["train_input"] * (1 + 0.5 * seed)
        model.update_grid(x)
        if masked:
            model.layers[0].mask[0, seed % width[1]] = 0.0
        models.append(model)
    return models


def _stacked_input(models, n=150):
    x = torch.rand(len(models), n, models[0].width[0], dtype=F64, generator=torch.Generator().manual_seed(9)) * 3 - 1.5
    return x  # partly outside the grids on purpose


@pytest.mark.parametrize("compiled", [True, False])  # the kernel's fleet call, and the plain-ops reference
@pytest.mark.parametrize("num_intervals", [3, 12])
def test_stacked_forward_and_penalty_equal_each_model(num_intervals, compiled):
    models = _kans([3, 4, 2], 3, num_intervals, masked=True)
    stacked, x = StackedKAN(models), _stacked_input(models)
    with native.use_native(compiled):
        out, _ = stacked.forward(stacked.params, x)
    out_p, penalty = stacked.forward(stacked.params, x, with_penalty=True, l1_weight=0.7, entropy_weight=1.3)
    for m, model in enumerate(models):
        ref_out, ref_penalty = model.forward_with_penalty(x[m], 0.7, 1.3)
        assert torch.allclose(out[m], model(x[m]), rtol=0, atol=1e-12)
        assert torch.allclose(out_p[m], ref_out, rtol=0, atol=1e-12)
        assert abs(float(penalty[m] - ref_penalty.detach())) < 1e-12


def _flat_grad(loss, model):
    """The gradient of ``loss`` over ``model.parameters()`` as one vector (zeros where unused), the
    vector a single fit's L-BFGS works on and a stack's row holds."""
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("with_penalty", [False, True])
@pytest.mark.parametrize("num_intervals", [3, 12])
def test_stacked_gradients_equal_per_model_gradients(num_intervals, with_penalty, compiled):
    models = _kans([2, 3, 2], 3, num_intervals, masked=True)
    stacked, x = StackedKAN(models), _stacked_input(models)
    y = torch.randn(len(models), x.shape[1], 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    params = stacked.params.clone().requires_grad_(True)
    with native.use_native(compiled):
        out, penalty = stacked.forward(params, x, with_penalty=with_penalty)
    losses = (out - y).square().mean(dim=(1, 2)) + (0.1 * penalty if with_penalty else 0)
    (grad,) = torch.autograd.grad(losses.sum(), params)
    for m, model in enumerate(models):
        ref_out, ref_penalty = model.forward_with_penalty(x[m]) if with_penalty else (model(x[m]), 0)
        loss = (ref_out - y[m]).square().mean() + 0.1 * ref_penalty
        assert torch.allclose(grad[m], _flat_grad(loss, model), rtol=0, atol=1e-12)


@pytest.mark.skipif(not native.available(), reason="compiled kernel unavailable (no C++ compiler)")
def test_on_cpu_a_stack_runs_each_models_own_kernel_call_bit_for_bit():
    """A fleet is M single models: outputs and parameter gradients equal each model's own exactly."""
    models = _kans([3, 5, 2], 4, 7, masked=True)
    stacked, x = StackedKAN(models), _stacked_input(models)
    other = x.flip(1) * 0.9
    params = stacked.params.clone().requires_grad_(True)
    for inputs in (x, other, x, other):  # first sight fills the first layer's buffer, the second reads it
        out, _ = stacked.forward(params, inputs)
        (grad,) = torch.autograd.grad(out.square().sum(), params)
        for m, model in enumerate(models):
            own = model(inputs[m])
            own_grad = _flat_grad(own.square().sum(), model)
            assert torch.equal(out[m], own) and torch.equal(grad[m], own_grad)
    assert len(stacked._kept.entries) == 2  # both inputs' buffers are kept


@pytest.mark.parametrize("compiled", [True, False])
def test_a_subset_of_rows_gets_the_numbers_of_the_whole_stack(compiled):
    """What the fleet optimizer evaluates when only some models want a point: those rows alone,
    each with the numbers it has in the whole stack (kernel: read from the kept first-layer buffer)."""
    models = _kans([3, 4, 2], 4, 5, masked=True)
    stacked, x = StackedKAN(models), _stacked_input(models)
    rows = [0, 2, 3]
    with native.use_native(compiled):
        whole_params = stacked.params.clone().requires_grad_(True)
        whole, _ = stacked.forward(whole_params, x)
        (whole_grad,) = torch.autograd.grad(whole.square().sum(), whole_params)
        params = stacked.params[rows].clone().requires_grad_(True)
        part, _ = stacked.forward(params, x, rows=rows)
        (grad,) = torch.autograd.grad(part.square().sum(), params)
    assert torch.allclose(part, whole[rows], rtol=0, atol=0 if compiled else 1e-13)
    assert torch.allclose(grad, whole_grad[rows], rtol=0, atol=0 if compiled else 1e-12)


def test_the_fast_path_switch_reaches_stacks():
    models = _kans([2, 3, 1], 3)
    stacked, x = StackedKAN(models), _stacked_input(models)
    with layers.use_fast_path(False):
        switched, _ = stacked.forward(stacked.params, x)
    with native.use_native(False):
        reference, _ = stacked.forward(stacked.params, x)
    assert torch.equal(switched, reference)


@pytest.mark.parametrize("compiled", [True, False])
def test_stacked_grid_update_equals_model_update_grid(compiled):
    """Bit for bit on the kernel: the next layer's inputs come from it, as in KAN.update_grid."""
    if compiled and not native.available():
        pytest.skip("compiled kernel unavailable (no C++ compiler)")
    models = _kans([3, 5, 2], 4)
    x = _stacked_input(models)
    with native.use_native(compiled):
        stacked = StackedKAN(models)
        stacked.update_grid(x, 9)
        for m, model in enumerate(models):
            model.update_grid(x[m], 9)
    assert stacked.num_intervals == 9
    fresh = StackedKAN(models)
    grid_tol, param_tol = (0.0, 0.0) if compiled else (1e-12, 1e-10)
    assert all(torch.allclose(a, b, rtol=0, atol=grid_tol) for a, b in zip(stacked.grids, fresh.grids))
    assert torch.allclose(stacked.params, fresh.params, rtol=0, atol=param_tol)


def test_stacked_mlp_forward_and_write_back():
    models = [MLP([2, 6, 6, 1], activation="tanh", seed=s, dtype=F64) for s in range(3)]
    stacked, x = StackedMLP(models), _stacked_input(models)
    out, _ = stacked.forward(stacked.params, x)
    assert all(torch.allclose(out[m], model(x[m]), rtol=0, atol=1e-12) for m, model in enumerate(models))
    stacked.params = stacked.params * 2
    stacked.write_back(models, range(3))
    out2, _ = stacked.forward(stacked.params, x)
    assert all(torch.allclose(out2[m], model(x[m]), rtol=0, atol=1e-12) for m, model in enumerate(models))


def _relative(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_on_cpu_a_kan_fleet_equals_individual_fits_bit_for_bit(dtype):
    """Without the penalty the kernel's fleet runs each model's own numbers, and every model's
    loss, gradient and metrics come from its own outputs: histories and parameters equal those of
    separate fits exactly (grid switches, in-phase refits, a pruned model's edge mask, a deep KAN,
    layers with one input, whose grid refits must not be solved as one batch)."""
    if not native.available():
        pytest.skip("needs the compiled kernel")
    data = {key: value.to(dtype) for key, value in _data().items()}
    refits = TrainConfig(steps=3, grid_schedule=(3, 5), grid_update_every=2)
    stalls = TrainConfig(steps=8, grid_schedule=(3, 5), stall_window=1, stall_tolerance=0.2)  # rows leave one by one
    stops = TrainConfig(steps=6, grid_schedule=(10,), stop_on_test_rise=True)  # rows stop and are restored
    noisy = {key: value.to(dtype) for key, value in _data(n=100).items()}
    noisy["train_label"] = noisy["train_label"] + 0.3 * torch.randn(100, 1, generator=torch.Generator().manual_seed(0)).to(dtype)
    one_input = {key: value[:, :1] if key.endswith("input") else value for key, value in data.items()}
    cases = (([2, 3, 1], refits, data), ([2, 3, 3, 1], refits, data), ([2, 3, 1], stalls, data), ([2, 4, 1], stops, noisy),
             ([2, 1, 1], refits, data), ([1, 2, 1], refits, one_input))  # layers of one input: batched solves of one
    for width, config, data in cases:
        models = [KAN(width, seed=s, dtype=dtype) for s in range(3)]
        models[1].layers[0].mask[0, min(1, width[1] - 1)] = 0.0
        singles = copy.deepcopy(models)
        expected = [fit(model, data, config) for model in singles]
        results = fit_many(models, [data] * 3, config)  # "auto": stacked on CPU too
        assert group_indices(models, [data] * 3, [config] * 3) == [[0, 1, 2]]
        assert [(r.status, r.message, r.history) for r in results] == [(r.status, r.message, r.history) for r in expected]
        for ours, ref in zip(models, singles):
            assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values())
                       if isinstance(a, torch.Tensor))


def test_off_the_kernel_a_fleet_follows_individual_fits_up_to_rounding():
    """The plain-ops reference (GPUs, no compiler): same algorithm per model, different rounding.
    The first step agrees to ~1e-9 (measured 1e-14..1e-11); L-BFGS then amplifies rounding
    differences (about 100x per step of 20 iterations), so later steps are only compared as 'same
    quality': final RMSEs within 2x."""
    data, config = _data(), TrainConfig(steps=4, grid_schedule=(3, 5))
    single = [KAN([2, 3, 1], seed=s, dtype=F64) for s in range(3)]
    batched = copy.deepcopy(single)
    expected = [fit(model, data, config) for model in single]
    with layers.use_fast_path(False):
        results = fit_many(batched, [data] * 3, config, batch="always")
    for ours, ref in zip(results, expected):
        assert ours.status == ref.status == "ok"
        assert [list(h) for h in ours.history] == [list(h) for h in ref.history]
        assert [h["step"] for h in ours.history] == [h["step"] for h in ref.history]
        assert [h["grid"] for h in ours.history] == [3.0] * 4 + [5.0] * 4
        assert _relative(ours.history[0]["train_loss"], ref.history[0]["train_loss"]) < 1e-8
        assert 0.5 < ours.final["test_rmse"] / ref.final["test_rmse"] < 2
        assert ours.final["test_rmse"] < 0.3 * ref.history[0]["test_rmse"]


def test_mixed_lambdas_mlps_and_classification_follow_individual_fits():
    data = _data()
    configs = [TrainConfig(steps=2, lamb=lamb) for lamb in (0.0, 1e-2)]
    kans = [KAN([2, 3, 1], seed=s, dtype=F64) for s in range(2)]
    mlps = [MLP([2, 8, 1], seed=s, dtype=F64) for s in range(2)]
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(400, 2, dtype=F64, generator=gen) * 2 - 1
    labels = (x[:, 0] * x[:, 1] > 0).long()
    classes = {"train_input": x[:200], "train_label": labels[:200], "test_input": x[200:], "test_label": labels[200:]}
    classifiers = [KAN([2, 2, 2], seed=s, dtype=F64) for s in range(2)]
    ce = TrainConfig(steps=2, loss="cross_entropy")
    models = kans + mlps + classifiers
    datasets = [data] * 4 + [classes] * 2
    all_configs = configs + [TrainConfig(steps=2)] * 2 + [ce] * 2
    expected = [fit(m, d, c) for m, d, c in zip(copy.deepcopy(models), datasets, all_configs)]
    results = fit_many(models, datasets, all_configs, batch="always")
    assert group_indices(models, datasets, all_configs, "always") == [[0, 1], [2, 3], [4, 5]]
    for ours, ref in zip(results, expected):
        assert list(ours.final) == list(ref.final)
        assert _relative(ours.history[0]["train_loss"], ref.history[0]["train_loss"]) < 1e-8
    assert results[0].history[0]["regularization"] == 0.0
    assert _relative(results[1].history[0]["regularization"], expected[1].history[0]["regularization"]) < 1e-8
    assert results[4].final["test_accuracy"] == pytest.approx(expected[4].final["test_accuracy"], abs=0.02)


def test_diverging_member_is_frozen_without_disturbing_the_others():
    data = _data()
    config = [TrainConfig(steps=3, lamb=lamb) for lamb in (1e-3, 1e308, 1e-3)]  # λ·penalty overflows for model 1
    models = [KAN([2, 3, 1], seed=s, dtype=F64) for s in range(3)]
    initial = copy.deepcopy(models[1].state_dict())
    clean = [copy.deepcopy(models[0]), copy.deepcopy(models[2])]
    results = fit_many(models, [data] * 3, config, batch="always")
    reference = fit_many(clean, [data] * 2, [config[0], config[2]], batch="always")
    assert results[1].status == "diverged" and "non-finite" in results[1].message and results[1].history == []
    assert all(torch.equal(v, initial[k]) for k, v in models[1].state_dict().items() if isinstance(v, torch.Tensor))
    for ours, ref in zip([results[0], results[2]], reference):
        assert ours.status == "ok" and len(ours.history) == len(ref.history) == 3
        for a, b in zip(ours.history, ref.history):
            assert all(_relative(a[key], b[key]) < 1e-12 for key in a if b[key])


def test_early_stop_and_sparse_records_match_individual_fits():
    gen = torch.Generator().manual_seed(0)
    noisy = _data(n=100)
    noisy["train_label"] = noisy["train_label"] + 0.3 * torch.randn(100, 1, dtype=F64, generator=gen)
    statuses = []
    for config in (TrainConfig(steps=6, grid_schedule=(10,), stop_on_test_rise=True),
                   TrainConfig(steps=3, grid_schedule=(3, 4), eval_every=2, grid_update_every=2)):
        models = [KAN([2, 4, 1], seed=s, dtype=F64) for s in range(2)]
        expected = [fit(m, noisy, config) for m in copy.deepcopy(models)]
        results = fit_many(models, [noisy] * 2, config, batch="always")
        for ours, ref, model in zip(results, expected, models):
            assert (ours.status, ours.message) == (ref.status, ref.message)
            assert [h["step"] for h in ours.history] == [h["step"] for h in ref.history]
            kept = torch.sqrt(torch.mean((model(noisy["test_input"]) - noisy["test_label"]) ** 2)).item()
            assert kept == pytest.approx(ours.final["test_rmse"], rel=1e-10)
        statuses.append([r.status for r in results])
    assert statuses == [["early_stopped"] * 2, ["ok"] * 2]


def test_members_stall_on_their_own_and_keep_their_recorded_state():
    """fit's stall rule per member: a member that stalls waits for the next phase, untouched by the
    in-phase grid refits of the others, and its steps stay numbered 1, 2, …"""
    data = _data()
    config = TrainConfig(steps=20, grid_schedule=(3, 5), stall_window=2, stall_tolerance=1e-2, grid_update_every=3,
                         grid_update_until=20)
    models = [KAN([2, 1, 1], seed=s, dtype=F64) for s in range(3)]
    assert group_indices(models, [data] * 3, [config] * 3, "always") == [[0, 1, 2]]
    results = fit_many(models, [data] * 3, config, batch="always")
    for result, model in zip(results, models):
        steps = [h["step"] for h in result.history]
        assert result.status == "ok" and steps == list(range(1, len(steps) + 1)) and len(steps) < 40
        assert result.final["grid"] == 5.0
        kept = torch.sqrt(torch.mean((model(data["test_input"]) - data["test_label"]) ** 2)).item()
        assert kept == pytest.approx(result.final["test_rmse"], rel=1e-10)
    assert len({len(result.history) for result in results}) > 1  # they stalled at different steps


def test_grouping_splits_incompatible_models_and_keeps_order():
    data, small = _data(), _data(n=100)
    symbolic = KAN([2, 3, 1], seed=5, dtype=F64)
    symbolic.layers[1].set_symbolic(0, 0, "sin", (1.0, 0.0, 1.0, 0.0))
    nonuniform = KAN([2, 3, 1], seed=6, dtype=F64)
    nonuniform.update_grid(data["train_input"], uniform_fraction=0.5)
    models = [
        KAN([2, 3, 1], seed=0, dtype=F64), MLP([2, 4, 1], dtype=F64), KAN([2, 2, 1], seed=1, dtype=F64),
        KAN([2, 3, 1], seed=2, dtype=F64), symbolic, KAN([2, 3, 1], seed=3, dtype=F64), nonuniform,
        KAN([2, 3, 1], seed=4, num_intervals=5, dtype=F64), MLP([2, 4, 1], seed=1, dtype=F64),
        MLP([2, 4, 1], seed=2, activation="tanh", dtype=F64),
    ]
    datasets = [data] * 5 + [small] + [data] * 4
    configs = [TrainConfig(steps=1)] * 10
    configs[3] = TrainConfig(steps=1, optimizer="adam", lr=0.01)
    groups = group_indices(models, datasets, configs, "always")
    assert groups == [[0], [1, 8], [2], [3], [4], [5], [6], [7], [9]]
    configs[3] = configs[0]
    assert group_indices(models, datasets, configs, "always")[0] == [0, 3]
    results = fit_many(models, datasets, configs, batch="always")
    assert [r.status for r in results] == ["ok"] * 10
    assert [r.final["grid"] for r in results] == [3.0, 0.0, 3.0, 3.0, 3.0, 3.0, 3.0, 5.0, 0.0, 0.0]


def test_batch_mode_decides_which_groups_are_stacked():
    data = _data()
    models = [KAN([2, 3, 1], seed=0, dtype=F64), KAN([2, 3, 1], seed=1, dtype=F64),
              MLP([2, 8, 1], seed=0, dtype=F64), MLP([2, 8, 1], seed=1, dtype=F64)]
    configs = [TrainConfig(steps=1)] * 4
    assert group_indices(models, [data] * 4, configs, "always") == [[0, 1], [2, 3]]
    assert group_indices(models, [data] * 4, configs, "auto") == [[0, 1], [2], [3]]  # CPU: KAN fleets only
    penalised = [TrainConfig(steps=1, lamb=0.01)] * 2 + configs[2:]
    assert group_indices(models, [data] * 4, penalised, "auto") == [[0], [1], [2], [3]]
    with layers.use_fast_path(False):
        assert group_indices(models, [data] * 4, configs, "auto") == [[0], [1], [2], [3]]
    assert group_indices(models, [data] * 4, configs, "never") == [[0], [1], [2], [3]]
    with pytest.raises(ValueError, match="unknown batch mode 'sometimes'"):
        fit_many(models, [data] * 4, configs, batch="sometimes")


@pytest.mark.skipif(not native.available(), reason="compiled kernel unavailable (no C++ compiler)")
def test_cpu_stacks_are_split_so_every_model_keeps_its_per_sample_buffers():
    """The kernel's buffer limit counts a whole stack: a group too big for it is split into stacks
    that each keep every model's buffers, as single fits would (numbers are the same either way)."""
    models = [KAN([2, 5, 1], seed=s, dtype=F64) for s in range(5)]
    small = _data()
    assert group_indices(models, [small] * 5, [TrainConfig(steps=1)] * 5) == [[0, 1, 2, 3, 4]]
    rows = 100_000
    x = torch.zeros(rows, 2, dtype=F64)
    big = {"train_input": x, "train_label": x[:, :1], "test_input": x[:8], "test_label": x[:8, :1]}
    hidden_buffer = 8 * torch.ops.kan.local_size(rows, 5, 3)  # bytes per model: over half the limit, under it
    assert hidden_buffer <= torch.ops.kan.local_bytes_kept() < 2 * hidden_buffer
    assert group_indices(models, [big] * 5, [TrainConfig(steps=1)] * 5) == [[0], [1], [2], [3], [4]]


def test_same_inputs_give_identical_results():
    data, config = _data(), TrainConfig(steps=2, grid_schedule=(3, 6))
    runs = []
    for _ in range(2):
        models = [KAN([2, 3, 1], seed=s, dtype=F64) for s in range(3)]
        results = fit_many(models, [data] * 3, config, batch="always")
        runs.append(([r.history for r in results], [m.state_dict() for m in models]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


def test_parameters_are_written_back(tmp_path):
    data, config = _data(), TrainConfig(steps=2, grid_schedule=(3, 6))
    models = [KAN([2, 3, 1], seed=s, dtype=F64) for s in range(2)]
    results = fit_many(models, [data] * 2, config, batch="always")
    for model, result in zip(models, results):
        assert model.num_intervals == 6 and model.layers[0].coef.shape[-1] == 9
        rmse = torch.sqrt(torch.mean((model(data["test_input"]) - data["test_label"]) ** 2)).item()
        assert rmse == pytest.approx(result.final["test_rmse"], rel=1e-10)
        model.save(tmp_path / "m.pt")
        assert torch.equal(load_model(tmp_path / "m.pt")(data["test_input"]), model(data["test_input"]))
        assert prune(model, data["train_input"], 1e-4).width[0] == 2
        assert fit(model, data, TrainConfig(steps=1)).status == "ok"  # trains on individually afterwards


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_group_matches_cpu():
    data, config = _data(), TrainConfig(steps=1, grid_schedule=(3, 5))
    cpu = [KAN([2, 3, 1], seed=s, dtype=F64) for s in range(2)]
    gpu = [copy.deepcopy(m).to("cuda") for m in cpu]
    on_cpu = fit_many(cpu, [data] * 2, config, batch="always")
    on_gpu = fit_many(gpu, [{k: v.cuda() for k, v in data.items()}] * 2, config, batch="always")
    assert all(m.layers[0].coef.device.type == "cuda" for m in gpu)
    for a, b in zip(on_cpu, on_gpu):
        assert _relative(a.history[0]["train_loss"], b.history[0]["train_loss"]) < 1e-8


def test_fit_many_names_a_repeated_model_and_the_bad_datasets_index():
    model, data = _kans([2, 3, 1], 1)[0], _data()
    with pytest.raises(ValueError, match="the same model object more than once"):
        fit_many([model, model], [data, data])
    other = _kans([2, 3, 1], 2)[1]
    with pytest.raises(ValueError, match=r"datasets\[1\]: dataset is missing \['test_label'\]"):
        fit_many([model, other], [data, {k: v for k, v in data.items() if k != "test_label"}])
    results = fit_many((m for m in (model, other)), (d for d in (data, data)), TrainConfig(steps=1))
    assert [r.status for r in results] == ["ok", "ok"]  # any iterables
