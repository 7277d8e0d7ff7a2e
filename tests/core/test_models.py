"""KAN layer and model: function identities, masks, symbolic edges, save/load, devices."""

import pytest
import torch

from kan import KAN, MLP, TrainConfig, fit, load_model
from kan.layers import KANLayer

F64 = torch.float64


def _x(n=300, d=2, seed=0):
    return torch.rand(n, d, dtype=F64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _decorated_kan():
    model = KAN([2, 3, 2], num_intervals=5, dtype=F64, seed=3)
    model.layers[0].mask[1, 2] = 0.0
    model.layers[1].set_symbolic(0, 1, "sin", (2.0, 0.1, 0.5, -0.2))
    model.layers[1].set_symbolic(2, 0, "x^2", (1.0, 0.0, 1.0, 0.0))
    return model


def test_edge_activations_sum_to_forward():
    model, x = _decorated_kan(), _x()
    out, edges = model.forward_with_edges(x)
    assert torch.allclose(out, model(x), atol=1e-12)
    assert torch.all(edges[0][:, 1, 2] == 0)  # masked edge is off
    layer_in = model.layer_inputs(x)[1]
    expected = 0.5 * torch.sin(2.0 * layer_in[:, 0] + 0.1) - 0.2
    assert torch.allclose(edges[1][:, 0, 1], expected, atol=1e-12)


def test_initial_spline_is_small_and_base_is_xavier():
    layer = KAN([4, 6], num_intervals=5, seed=0).layers[0]
    assert layer.coef.abs().max() < 0.6  # σ = 0.1 noise
    bound = (6 / (4 + 6)) ** 0.5
    assert layer.scale_base.abs().max() <= bound and torch.all(layer.scale_spline == 1)


def test_same_seed_same_model_without_touching_global_rng():
    state = torch.random.get_rng_state()
    a, b = KAN([2, 5, 1], seed=7), KAN([2, 5, 1], seed=7)
    MLP([2, 8, 1], seed=7)
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.layers[0].coef, KAN([2, 5, 1], seed=8).layers[0].coef)


def test_parameter_count():
    model = KAN([2, 5, 1], num_intervals=5, order=3)
    assert model.num_parameters() == 15 * (5 + 3 + 2)
    model.layers[0].mask[0, 0] = 0
    model.layers[1].set_symbolic(0, 0, "exp", (1, 0, 1, 0))
    assert model.num_parameters() == 13 * 10 + 4
    assert MLP([2, 5, 1]).num_parameters() == 2 * 5 + 5 + 5 + 1


@pytest.mark.parametrize("factory", [_decorated_kan, lambda: MLP([2, 7, 2], activation="tanh", dtype=F64)])
def test_save_load_round_trips_exactly(tmp_path, factory):
    model, x = factory(), _x()
    if isinstance(model, KAN):
        model.update_grid(x, num_intervals=9)
    model.save(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded) is type(model) and loaded.config() == model.config()
    assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("factory", [lambda: KAN([2, 3, 1], num_intervals=4), lambda: MLP([2, 5, 1])])
def test_a_model_moved_to_another_dtype_saves_and_loads_in_it(tmp_path, factory):
    model, x = factory().double(), _x()
    model.save(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert model.config()["dtype"] == "float64" and loaded.dtype == torch.float64
    assert torch.equal(loaded(x), model(x))


def test_nonuniform_grid_path_round_trips(tmp_path):
    model, x = KAN([2, 2, 1], num_intervals=4, dtype=F64), _x() ** 3
    before = model(x)
    model.update_grid(x, uniform_fraction=0.0)
    assert not model.layers[0].uniform
    assert (model(x) - before).abs().max() < 0.05 * before.abs().max()
    model.save(tmp_path / "m.pt")
    assert torch.equal(load_model(tmp_path / "m.pt")(x), model(x))


def test_a_state_of_another_grid_size_loads_and_computes_the_same():
    source = _decorated_kan()
    source.update_grid(_x(), 20)
    target = KAN([2, 3, 2], num_intervals=5, dtype=F64, seed=9)
    target(_x())  # a forward first: what the layer remembers of its inputs must not outlive the load
    target.load_state_dict(source.state_dict())
    assert target.num_intervals == 20 and torch.equal(target(_x()), source(_x()))
    with pytest.raises(RuntimeError, match="size mismatch"):  # another width is still refused
        KAN([2, 4, 2], num_intervals=20, dtype=F64).load_state_dict(source.state_dict())
    with pytest.raises(RuntimeError, match="size mismatch"):  # and another spline order
        KAN([2, 3, 2], num_intervals=6, order=2, dtype=F64).load_state_dict(source.state_dict())


def test_update_grid_to_data_range_then_finer_preserves_function():
    model, x = KAN([2, 4, 1], num_intervals=5, dtype=F64), _x(2000)
    model.update_grid(x)  # knots now span the data of every layer
    before = model(x)
    model.update_grid(x, num_intervals=10)  # same ranges, nested knots: exact
    assert (model(x) - before).abs().max() < 1e-8


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype):
    model = KAN([3, 2, 1], dtype=dtype)
    out = model(torch.zeros(4, 3, dtype=dtype))
    assert out.dtype == dtype and out.shape == (4, 1)
    layer = KANLayer(3, 2, dtype=str(dtype).removeprefix("torch."))  # a layer takes the name, as KAN does
    assert layer.coef.dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_end_to_end():
    model = _decorated_kan().to("cuda")
    x = _x().to("cuda")
    out, edges = model.forward_with_edges(x)
    assert out.device.type == "cuda" and torch.allclose(out.cpu(), _decorated_kan()(x.cpu()), atol=1e-10)
    model.update_grid(x, num_intervals=8)
    assert model(x).device.type == "cuda"


def test_wrong_input_width_is_named():
    with pytest.raises(ValueError, match=r"expects input of shape \[batch, 2\], got \[5, 3\]"):
        KAN([2, 1])(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"\[batch, 2\]"):
        MLP([2, 1])(torch.zeros(5))


def test_bad_constructor_arguments_are_named():
    with pytest.raises(ValueError, match="at least 1 interval"):
        KAN([2, 1], num_intervals=0)
    with pytest.raises(ValueError, match="width"):
        KAN([2])
    with pytest.raises(ValueError, match="unknown MLP activation 'gelu'"):
        MLP([2, 1], activation="gelu")
    with pytest.raises(ValueError, match="unknown symbolic function 'sinc'"):
        KAN([2, 1]).layers[0].set_symbolic(0, 0, "sinc", (1, 0, 1, 0))
    with pytest.raises(ValueError, match="grid_range must be two finite numbers"):
        KAN([2, 1], grid_range=(-float("inf"), 1.0))
    with pytest.raises(ValueError, match="grid_range must be two finite numbers"):
        KAN([2, 1], grid_range=(0.0, 1.0, 2.0))
    with pytest.raises(ValueError, match="noise_scale must be a finite number >= 0, got nan"):
        KAN([2, 1], noise_scale=float("nan"))
    with pytest.raises(ValueError, match="seed must be a whole number, got 1.7"):
        KAN([2, 1], seed=1.7)
    with pytest.raises(ValueError, match="layer dimensions must be whole numbers >= 1, got in_dim='2'"):
        KANLayer("2", 3)
    with pytest.raises(ValueError, match="width must list integer layer sizes"):
        KAN([2, "3", 1])
    with pytest.raises(ValueError, match="at most 10000 intervals"):
        KAN([2, 1]).extend_grid(20_000)  # would ask for GBs before failing


def test_inputs_of_another_dtype_or_type_are_named():
    with pytest.raises(TypeError, match=r"model's dtype torch.float32, got torch.float64"):
        KAN([2, 1])(torch.zeros(5, 2, dtype=F64))
    with pytest.raises(TypeError, match=r"model's dtype torch.float64, got torch.int64"):
        MLP([2, 1], dtype=F64)(torch.zeros(5, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="got ndarray"):
        KAN([2, 1])(torch.zeros(5, 2).numpy())


def test_sizes_and_dtypes_must_be_what_they_say():
    with pytest.raises(ValueError, match=r"integer layer sizes, got \[2.7, 1\]"):
        KAN([2.7, 1])
    with pytest.raises(ValueError, match="num_intervals must be an integer, got 2.5"):
        KAN([2, 1], num_intervals=2.5)
    for make in (lambda: KAN([2, 1], dtype="float16"), lambda: MLP([2, 1], dtype="double")):
        with pytest.raises(ValueError, match="unsupported dtype"):
            make()
    assert KAN([2, 1], num_intervals=4.0).num_intervals == 4  # an integral float is an integer


@pytest.mark.parametrize("fast", [True, False])
def test_forward_under_inference_mode_equals_no_grad(fast):
    from kan.layers import use_fast_path

    model, x = KAN([2, 4, 3, 1], num_intervals=5, dtype=F64), _x()
    with use_fast_path(fast):
        with torch.no_grad():
            expected = model(x)
        with torch.inference_mode():
            inference_x = x.clone()  # an inference tensor: no version counter
            assert torch.equal(model(x), expected) and torch.equal(model(inference_x), expected)


def test_forget_inputs_sees_writes_that_bypass_the_version_counter():
    model, x = KAN([2, 3, 1], num_intervals=5, dtype=F64), _x()
    with torch.no_grad():
        model(x), model(x)  # the layers now remember x
        x.numpy()[:] = 0.5  # invisible to x._version
        model.forget_inputs()
        assert torch.equal(model(x), model(x.clone()))


def test_a_mask_or_grid_written_through_data_is_seen_after_forget_inputs_and_by_fit():
    model, x = KAN([2, 3, 1], num_intervals=5, dtype=F64), _x()
    with torch.no_grad():
        model(x)  # caches the numeric mask and the grid layout
        model.layers[0].mask.data[0, :] = 0.0  # cut input 0: invisible to mask._version
        model.layers[0].grid.data.mul_(1.5)  # invisible to grid._version
        model.forget_inputs()
        assert torch.allclose(model(x), model.forward_with_edges(x)[0], atol=1e-12)  # the plain ops read the tensors
    data = {"train_input": x, "train_label": x[:, :1], "test_input": x, "test_label": x[:, :1]}
    model.layers[0].mask.data[1, :] = 0.0
    fit(model, data, TrainConfig(steps=2))
    with torch.no_grad():
        assert torch.allclose(model(x), model.forward_with_edges(x)[0], atol=1e-12)
        assert model(x).std() < 1e-12  # both inputs cut: a constant


def test_order_zero_splines_work_on_every_path():
    model, x = KAN([2, 2, 1], num_intervals=4, order=0, dtype=F64), _x()
    edges = model.forward_with_edges(x)[1]  # the plain ops
    assert torch.allclose(edges[-1].sum(dim=1), model(x), atol=1e-12)
    assert [s.shape for s in model.edge_scores(x)] == [(2, 2), (2, 1)]


def test_half_precision_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="unsupported dtype torch.float16; use torch.float32 or torch.float64"):
        KANLayer(3, 4, dtype=torch.float16)
    with pytest.raises(ValueError, match="unsupported dtype 'float16'"):
        KANLayer(3, 4, dtype="float16")
    model = KAN([2, 3, 1], seed=0).to(torch.bfloat16)
    with pytest.raises(TypeError, match="computes in float32 or float64"):
        model(torch.rand(5, 2, dtype=torch.bfloat16))


def test_a_frozen_spline_stays_frozen_when_its_grid_size_changes():
    model = KAN([2, 3, 1], num_intervals=3, dtype=F64)
    model.layers[0].coef.requires_grad_(False)
    model.extend_grid(6)
    model.update_grid(_x(), num_intervals=9)
    assert not model.layers[0].coef.requires_grad and model.layers[1].coef.requires_grad


@pytest.mark.parametrize("bad", ["empty", "nan"])
def test_samples_that_give_no_grid_scores_or_ranges_are_refused(bad):
    model, x = KAN([2, 3, 1], dtype=F64), _x()
    if bad == "empty":
        x, message = x[:0], "needs samples, got an empty batch"
    else:
        x[3, 1], message = float("nan"), "got 1 sample row\\(s\\) with NaN or inf out of"
    for call in (model.update_grid, model.edge_scores, model.layer_inputs, model.layers[0].update_grid):
        with pytest.raises(ValueError, match=message):
            call(x)


@pytest.mark.parametrize("x, error", [([[0.1, 0.2]], TypeError), (torch.rand(4, 3, dtype=F64), ValueError),
                                      (torch.rand(4, 2), TypeError)], ids=["list", "width", "dtype"])
def test_sample_methods_check_the_input_before_the_samples(x, error):
    """A list, a wrong width or a wrong dtype gets the input check's error, not an internal one."""
    model = KAN([2, 3, 1], dtype=F64)
    for call in (model.update_grid, model.edge_scores, model.layer_inputs, model.layers[0].update_grid):
        with pytest.raises(error, match="expects"):
            call(x)
