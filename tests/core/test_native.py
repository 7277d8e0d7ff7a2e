"""The compiled layer kernel (kan.native, operators torch.ops.kan): same numbers as the plain ops,
deterministic, checked arguments, traceable by torch.compile, cached builds, and a clean fallback
where no C++ compiler exists."""

import copy
import os
import pickle
import shutil
import subprocess
import sys

import pytest
import torch

from kan import KAN, create_dataset, native, pykan_config
from kan.layers import KANLayer
from kan.train import fit

pytestmark = pytest.mark.skipif(not native.available(), reason="compiled kernel unavailable (no C++ compiler)")

TOLERANCE = {torch.float64: 1e-11, torch.float32: 2e-5}


def _layer(dtype, order, out_dim, activation="silu", in_dim=3, G=7):
    gen = torch.Generator().manual_seed(3)
    layer = KANLayer(in_dim, out_dim, G, order, (-1.0, 1.0), 0.5, activation, gen, dtype)
    with torch.no_grad():
        layer.scale_spline.uniform_(0.5, 1.5, generator=gen)
        layer.mask[0, 0] = 0.0  # a pruned edge
    return layer


def _outputs_and_grads(layer, x, compiled):
    x = x.clone().requires_grad_(True)
    weights = torch.randn(x.shape[0], layer.out_dim, dtype=x.dtype, generator=torch.Generator().manual_seed(5))
    with native.use_native(compiled):
        out = layer(x)
        grads = torch.autograd.grad((out * weights).sum(), [x, layer.coef, layer.scale_base, layer.scale_spline])
    return [out.detach(), *grads]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("order", [1, 2, 3, 5])
# 1 and 3 outputs: the narrow kernel; 8 and more (WIDE_OUTPUTS in uniform_kan.c): the wide one, whose
# vectors (8 floats or 4 doubles) leave a half vector and scalars over at 14 and 37 outputs
@pytest.mark.parametrize("out_dim", [1, 3, 8, 14, 37])
@pytest.mark.parametrize("activation", ["silu", "identity", "zero"])
def test_compiled_kernel_matches_the_plain_ops(dtype, order, out_dim, activation):
    _check_against_plain_ops(_layer(dtype, order, out_dim, activation), batch=700)


def test_wide_kernel_matches_over_several_runs_of_samples():
    """Batches beyond WIDE_RUN samples (the wide backward's float32 partial sums), in float32."""
    _check_against_plain_ops(_layer(torch.float32, 3, 20), batch=2600)


def _skewed(batch, dtype, seed=4):
    """Samples crowded towards -1: their percentiles make strongly non-uniform grids."""
    return torch.rand(batch, 3, generator=torch.Generator().manual_seed(seed), dtype=dtype) ** 3 * 2 - 1


def _adaptive_layer(dtype, order, out_dim, activation="silu"):
    """A layer after pykan's grid update (98 % sample percentiles): non-uniform knots per input."""
    layer = _layer(dtype, order, out_dim, activation)
    layer.update_grid(_skewed(500, dtype), uniform_fraction=0.02)
    assert not layer.uniform and layer.fusable
    return layer


def _hand_made_layer(dtype, order, out_dim, G=7):
    """A layer on knots with spacings that vary 50-fold, different for each input."""
    layer = _layer(dtype, order, out_dim, G=G)
    spacing = torch.rand(3, G + 2 * order, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    knots = torch.cat([torch.zeros(3, 1, dtype=torch.float64), torch.cumsum(0.02 + spacing, dim=1)], dim=1)
    layer.grid = (knots / knots[:, -1:] * 2.4 - 1.2).to(dtype)
    layer.uniform = False
    return layer


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("out_dim", [1, 3, 8, 14, 37])
def test_compiled_kernel_matches_the_plain_path_on_non_uniform_grids(dtype, order, out_dim):
    """Knot search and Cox-de Boor recursion in the kernel against the plain ops, for samples
    inside, outside and exactly on the adaptive grid's ends."""
    layer = _adaptive_layer(dtype, order, out_dim)
    x = (torch.rand(700, 3, generator=torch.Generator().manual_seed(1), dtype=dtype) * 2 - 1) * 1.3  # some off grid
    x[:3] = layer.grid[:, [0, order + 1, -1]].T  # knots exactly
    _check_against_plain_ops(layer, x=x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("order", [1, 3, 5])
@pytest.mark.parametrize("out_dim", [1, 14])
def test_compiled_kernel_matches_the_plain_path_on_hand_made_knots(dtype, order, out_dim):
    _check_against_plain_ops(_hand_made_layer(dtype, order, out_dim), batch=700)


def _check_against_plain_ops(layer, batch=None, x=None):
    """The kernel's output and gradients against the plain path on ``x`` (default: ``batch``
    samples in [-1.6, 1.6], some off the grid, and the uniform grid's ends)."""
    dtype = layer.coef.dtype
    if x is None:
        x = (torch.rand(batch, 3, generator=torch.Generator().manual_seed(1), dtype=dtype) * 2 - 1) * 1.6
        x[:2] = torch.tensor([-1.0, 1.0], dtype=dtype)[:, None]  # knots exactly
        if layer.order == 1:  # a linear spline has no derivative at a knot: compare x's gradient elsewhere
            x[:2] += 1e-3
    compiled, reference = _outputs_and_grads(layer, x, True), _outputs_and_grads(layer, x, False)
    for name, a, b in zip(["output", "x", "coef", "scale_base", "scale_spline"], compiled, reference):
        scale = b.abs().max().clamp_min(1.0)
        assert (a - b).abs().max() <= TOLERANCE[dtype] * scale, name
    assert compiled[2][0, 0].abs().max() == 0 and compiled[3][0, 0] == 0  # the pruned edge learns nothing


@pytest.mark.parametrize("out_dim", [2, 14])
@pytest.mark.parametrize("make", [_layer, _adaptive_layer])
def test_non_finite_inputs_give_nan_rows(out_dim, make):
    layer = make(torch.float64, 3, out_dim)
    x = torch.rand(10, 3, dtype=torch.float64)
    x[4, 1], x[5, 2] = float("nan"), float("-inf")
    with torch.no_grad():
        out = layer(x)
    assert torch.isnan(out[4]).all() and torch.isnan(out[5]).all() and torch.isfinite(out[[0, 1, 2, 3, 6]]).all()


@pytest.mark.parametrize("width", [[3, 4, 1], [3, 12, 9]])
@pytest.mark.parametrize("uniform_fraction", [1.0, 0.02])
def test_kernel_is_deterministic(width, uniform_fraction):
    model = KAN(width, num_intervals=9, seed=2)
    x = torch.rand(3000, 3, generator=torch.Generator().manual_seed(0))
    if uniform_fraction < 1:
        model.update_grid(_skewed(3000, torch.float32), uniform_fraction=uniform_fraction)
    runs = []
    for _ in range(2):
        model.zero_grad()
        out = model(x)
        out.square().sum().backward()
        runs.append([out.detach(), *(p.grad.clone() for p in model.parameters() if p.grad is not None)])
    assert all(torch.equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fit_with_pykan_grid_updates_is_the_same_with_the_kernel(dtype):
    """pykan's protocol (grid updates onto 98 % percentile grids every 5 steps) trains through the
    kernel's non-uniform path to the same losses as through the plain ops. Adam: L-BFGS's line
    searches amplify rounding differences chaotically (tenfold per step)."""
    data = create_dataset(lambda x: torch.exp(torch.sin(torch.pi * x[:, :1]) + x[:, 1:] ** 2), [(-1, 1)] * 2,
                          n_train=300, n_test=100, dtype=dtype)
    config = pykan_config(steps=30, grid_schedule=(3, 5), optimizer="adam", lr=0.02)
    losses = []
    for compiled in (True, False):
        with native.use_native(compiled):
            model = KAN([2, 5, 1], num_intervals=3, seed=0, dtype=dtype)
            losses.append([row["train_loss"] for row in fit(model, data, config).history])
            assert not model.layers[0].uniform
    tolerance = {torch.float64: 1e-10, torch.float32: 1e-3}[dtype]
    assert losses[0] == pytest.approx(losses[1], rel=tolerance)


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env},
                          timeout=300)


PROBE = (
    "import torch; from kan import KAN, native; m = KAN([2, 3, 1], seed=0); "
    "y = m(torch.rand(5, 2)); print(native.available(), bool(torch.isfinite(y).all()))"
)


def test_without_a_compiler_layers_use_the_plain_ops(tmp_path):
    done = _python(PROBE, CXX=str(tmp_path / "no-such-cxx"), KAN_NATIVE_CACHE=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
    assert "compiled layer kernel unavailable (no C++ compiler found" in done.stderr


def test_a_failed_build_warns_with_the_compilers_error_and_falls_back(tmp_path):
    compiler = tmp_path / "broken-cxx"
    compiler.write_text('#!/bin/sh\n[ "$1" = --version ] && echo broken 1.0 && exit 0\necho "fatal: no luck" >&2; exit 1\n')
    compiler.chmod(0o755)
    done = _python(PROBE, CXX=str(compiler), KAN_NATIVE_CACHE=str(tmp_path / "cache"))
    assert done.stdout.split() == ["False", "True"], done.stderr
    assert done.stderr.count("compiled layer kernel unavailable") == 1 and "fatal: no luck" in done.stderr


def test_switched_off_by_environment(tmp_path):
    done = _python(PROBE, KAN_NATIVE="0", KAN_NATIVE_CACHE=str(tmp_path))
    assert done.stdout.split() == ["False", "True"] and "unavailable" not in done.stderr
    assert not list(tmp_path.iterdir())  # nothing was built


def test_build_is_cached(tmp_path):
    """A process finds the library its key names and builds nothing (a build takes tens of seconds:
    this one is copied from the running session's cache)."""
    built = native._build(shutil.which(os.environ.get("CXX", "c++")))  # the cached library
    shutil.copy(built, tmp_path / built.name)
    for _ in range(2):
        done = _python(PROBE, KAN_NATIVE_CACHE=str(tmp_path))
        assert done.stdout.split() == ["True", "True"], done.stderr
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # nothing built, no scratch left


def test_copies_of_a_used_model_do_not_share_kernel_state():
    model = KAN([2, 3, 1], num_intervals=6, seed=1)
    x = torch.rand(50, 2, generator=torch.Generator().manual_seed(2))
    model(x).sum().backward()  # fills the layers' caches (kernel calls hold raw pointers)
    expected = model(x).detach()
    copies = [copy.deepcopy(model), pickle.loads(pickle.dumps(model))]
    with torch.no_grad():
        model.layers[0].grid.mul_(2.0)  # the original's constants change; the copies must not see it
        for other in copies:
            assert torch.equal(other(x), expected)
        assert not torch.equal(model(x), expected)


def test_cache_key_covers_compiler_and_torch_version(monkeypatch):
    key = native.cache_key("/usr/bin/c++", "c++ 12.2")
    assert native.cache_key("/usr/bin/c++", "c++ 12.3") != key
    monkeypatch.setattr(torch, "__version__", torch.__version__ + ".other")
    assert native.cache_key("/usr/bin/c++", "c++ 12.2") != key


def test_kernel_limits_come_from_the_library():
    assert native.max_order() == torch.ops.kan.max_order() >= 5
    assert set(torch.ops.kan.activations()) == {"silu", "identity", "zero"}
    assert torch.ops.kan.local_size(300, 3, 3) > 0


def _op_args():
    """kan::layer_forward's arguments (without local buffer) for a float64 3 -> 4 layer, batch 300."""
    layer = _layer(torch.float64, 3, 4)
    x = (torch.rand(300, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1) * 1.2
    params = [p.detach().clone() for p in (layer.coef, layer.scale_base, layer.scale_spline)]
    return [x, *params, layer.mask.clone(), *layer._layout().native_constants, "silu"]


def _forward(args, local=None, mode="none", slopes=False):
    return torch.ops.kan.layer_forward(*args, local, mode, slopes)


@pytest.mark.parametrize(("position", "bad", "message"), [
    (0, lambda x: x.to(torch.int64), "x must be float32 or float64, got Long"),
    (1, lambda coef: coef.float(), "coef must be Double, got Float"),
    (1, lambda coef: coef.transpose(0, 1).contiguous().transpose(0, 1), "coef must be contiguous"),
    (2, lambda base: base[:, :3], r"scale_base must have shape \[3, 4\], got \[3, 3\]"),
    (4, lambda mask: mask.t().contiguous(), r"mask must have shape \[3, 4\], got \[4, 3\]"),
    (5, lambda scale: scale.float(), "scale must be Double, got Float"),
    (7, lambda poly: poly[:, :3], r"poly must have shape \[6, 3\], got \[8, 3\]"),
    (5, lambda scale: scale.to("meta"), "scale must be on cpu as x, got meta"),
    (0, lambda x: x.to("meta"), "must be on meta as x, got cpu"),
    (9, lambda activation: "tanh", "activation must be silu, identity or zero, got 'tanh'"),
])
def test_operator_rejects_bad_arguments_clearly(position, bad, message):
    args = _op_args()
    args[position] = bad(args[position])
    with pytest.raises(RuntimeError, match=f"kan::layer_forward: .*{message}"):
        _forward(args)


def test_operator_checks_the_local_buffer_and_mode():
    args = _op_args()
    with pytest.raises(RuntimeError, match="local_mode must be none, fill or read, got 'keep'"):
        _forward(args, mode="keep")
    with pytest.raises(RuntimeError, match=r"local must be \[n\] with n >= \d+ \(kan::local_size\)"):
        _forward(args, torch.empty(10, dtype=torch.float64), "fill")
    out, packed = _forward(args)
    with pytest.raises(RuntimeError, match="kan::layer_backward: grad_out must be Double of shape"):
        torch.ops.kan.layer_backward(*args[:1], args[1], args[3], args[4], packed, out[:, :2], *args[5:], True, None)


def test_operators_pass_opcheck():
    """Schema (the local buffer is declared mutated), fake tensors, autograd registration and
    AOT dispatch with dynamic shapes, for the forward (filling a buffer), backward and layer ops."""
    args = _op_args()
    local = torch.empty(torch.ops.kan.local_size(300, 3, 3), dtype=torch.float64)
    torch.library.opcheck(torch.ops.kan.layer_forward.default, (*args, local, "fill", True))
    out, packed = _forward(args, local, "fill", True)
    grad_out = torch.randn_like(out)
    backward_args = (args[0], args[1], args[3], args[4], packed, grad_out, *args[5:], True, local)
    torch.library.opcheck(torch.ops.kan.layer_backward.default, backward_args)
    differentiable = [t.requires_grad_() if i < 4 else t for i, t in enumerate(_op_args())]
    torch.library.opcheck(torch.ops.kan.layer.default, differentiable)


def _fleet_layers(dtype, uniform, models=3):
    """``models`` 3 -> 4 layers with their own parameters, masks and (skewed, if not ``uniform``) grids."""
    layers = []
    for m in range(models):
        layer = _adaptive_layer(dtype, 3, 4) if not uniform else _layer(dtype, 3, 4)
        gen = torch.Generator().manual_seed(10 + m)
        with torch.no_grad():
            for p in (layer.coef, layer.scale_base, layer.scale_spline):
                p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=dtype))
            layer.mask[m % 3, 1] = 0.0
        if uniform:
            layer.update_grid(_skewed(200, dtype, seed=20 + m))
        layers.append(layer)
    return layers


def _fleet_args(layers, xs):
    """kan::layer_forward's arguments for the fleet of ``layers`` on inputs ``xs``."""
    constants = [layer._layout().native_constants for layer in layers]
    stacked = [torch.stack([p.detach() for p in ps]) for ps in zip(*[(l.coef, l.scale_base, l.scale_spline, l.mask) for l in layers])]
    knots = None if constants[0][3] is None else torch.stack([c[3] for c in constants])
    return [torch.stack(xs), *stacked, torch.stack([c[0] for c in constants]), torch.stack([c[1] for c in constants]),
            constants[0][2], knots, "silu"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("uniform", [True, False])
def test_a_fleet_gives_each_model_its_numbers_alone_bit_for_bit(dtype, uniform):
    """The operators with a model axis: every model's output, packed weights and gradients equal
    those of its own call, with and without the per-sample buffer."""
    layers = _fleet_layers(dtype, uniform)
    xs = [_skewed(257, dtype, seed=30 + m) * 1.1 for m in range(len(layers))]
    args = _fleet_args(layers, xs)
    grad_out = torch.randn(len(layers), 257, 4, dtype=dtype, generator=torch.Generator().manual_seed(7))
    size = torch.ops.kan.local_size(257, 3, 3)
    local = torch.empty(len(layers), size, dtype=torch.float64)
    out, packed = _forward(args, local, "fill", True)
    grads = torch.ops.kan.layer_backward(args[0], args[1], args[3], args[4], packed, grad_out, *args[5:], True, local)
    for m, layer in enumerate(layers):
        alone = [t[m] if isinstance(t, torch.Tensor) and t.dim() > 0 and i != 7 else t for i, t in enumerate(args)]
        own_local = torch.empty(size, dtype=torch.float64)
        own_out, own_packed = _forward(alone, own_local, "fill", True)
        assert torch.equal(out[m], own_out) and torch.equal(packed[m], own_packed)
        own = torch.ops.kan.layer_backward(alone[0], alone[1], alone[3], alone[4], own_packed, grad_out[m], *alone[5:],
                                           True, own_local)
        assert all(torch.equal(a[m], b) for a, b in zip(grads, own))
        recomputed = torch.ops.kan.layer_backward(alone[0], alone[1], alone[3], alone[4], own_packed, grad_out[m],
                                                  *alone[5:], True, None)
        assert all(torch.equal(a[m], b) for a, b in zip(grads, recomputed))


def test_fleet_operators_check_the_model_axis_and_pass_opcheck():
    layers = _fleet_layers(torch.float64, uniform=True)
    xs = [_skewed(100, torch.float64, seed=m) for m in range(3)]
    args = _fleet_args(layers, xs)
    bad = list(args)
    bad[2] = bad[2][:2]
    with pytest.raises(RuntimeError, match=r"scale_base must have shape \[3, 3, 4\], got \[2, 3, 4\]"):
        _forward(bad)
    bad = list(args)
    bad[1] = bad[1][0]
    with pytest.raises(RuntimeError, match=r"coef must be \[models, in, out, num_basis\] like x"):
        _forward(bad)
    with pytest.raises(RuntimeError, match=r"local must be \[models, n\]"):
        _forward(args, torch.empty(torch.ops.kan.local_size(100, 3, 3), dtype=torch.float64), "fill")
    local = torch.empty(3, torch.ops.kan.local_size(100, 3, 3), dtype=torch.float64)
    torch.library.opcheck(torch.ops.kan.layer_forward.default, (*args, local, "fill", True))
    differentiable = [t.requires_grad_() if 0 < i < 4 else t for i, t in enumerate(args)]
    torch.library.opcheck(torch.ops.kan.layer.default, differentiable)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_layer_operator_matches_the_layer_bit_for_bit(dtype):
    layer = _layer(dtype, 3, 4)
    x = (torch.rand(300, 3, generator=torch.Generator().manual_seed(1), dtype=dtype) * 2 - 1).requires_grad_()
    params = [layer.coef, layer.scale_base, layer.scale_spline]
    expected = layer(x)
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, *params])
    out = native.layer(x, *params, layer.mask, layer._layout().native_constants, "silu")
    assert torch.equal(out, expected)
    grads = torch.autograd.grad(out.square().sum(), [x, *params])
    assert all(torch.equal(a, b) for a, b in zip(grads, expected_grads))


def test_layer_operator_is_differentiable_once():
    layer = _layer(torch.float64, 3, 4)
    x = torch.rand(20, 3, dtype=torch.float64, requires_grad=True)
    out = native.layer(x, layer.coef, layer.scale_base, layer.scale_spline, None, layer._layout().native_constants,
                       "silu")
    with pytest.raises(RuntimeError, match="kan::layer is differentiable once"):
        torch.autograd.grad(out.sum(), x, create_graph=True)


@pytest.mark.parametrize("uniform", [True, False])
def test_layer_under_torch_compile_matches_eager(uniform):
    """fullgraph: the layer traces into the registered operator (aot_eager backend: no code
    generation, so the test needs no compiler beyond the kernel's and runs in seconds)."""
    torch._dynamo.reset()
    layer = _layer(torch.float64, 3, 4) if uniform else _adaptive_layer(torch.float64, 3, 4)
    x = (torch.rand(300, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1) * 1.2
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    results = []
    for run in (layer, compiled):
        out = run(x)
        results.append([out.detach(), *torch.autograd.grad(out.square().sum(), [layer.coef, layer.scale_base])])
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_using_a_model_does_not_import_the_compiler():
    """torch._dynamo costs about a second to import; a process that only trains never pays it."""
    code = ("import sys, torch; from kan import KAN; KAN([2, 3, 1], seed=0)(torch.rand(5, 2)).sum().backward(); "
            "print('torch._dynamo' in sys.modules)")
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


def test_a_fresh_process_compiles_a_whole_model_and_keeps_the_eager_one_working():
    """Compiling before any forward: the kernel is loaded when the layers are made, not inside the trace."""
    code = ("import torch; from kan import KAN; m = KAN([2, 3, 1], dtype='float64', seed=0); "
            "x = torch.rand(50, 2, dtype=torch.float64); c = torch.compile(m, fullgraph=True, backend='aot_eager'); "
            "a = c(x); b = m(x); print(torch.equal(a, b), torch.equal(c(x * 0.5), m(x * 0.5)))")
    done = _python(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"]


def test_whole_model_under_torch_compile_matches_eager():
    """A KAN traces whole (fullgraph) into one kan::layer call per layer; outputs and gradients
    equal the eager model's fused node, a pruned edge and a non-uniform grid included."""
    torch._dynamo.reset()
    model = KAN([3, 4, 2, 1], num_intervals=6, dtype=torch.float64, seed=1)
    x = (torch.rand(300, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1) * 1.2
    model.layers[0].mask[1, 2] = 0.0
    model.layers[1].update_grid(model.layers[0](x).detach(), uniform_fraction=0.02)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    params = list(model.parameters())
    results = []
    for run in (model, compiled):
        out = run(x)
        grads = torch.autograd.grad(out.square().sum(), params, allow_unused=True)
        results.append([out.detach(), *(g for g in grads if g is not None)])
    assert len(results[0]) == len(results[1]) > 1
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_a_remembered_buffer_is_filled_before_anyone_can_read_it(monkeypatch):
    """Another thread may read a remembered per-sample buffer at once, so the layer remembers it
    only after the forward that fills it has returned."""
    import kan.layers as layers

    layer, x = _layer(torch.float64, 3, 3), torch.rand(64, 3, dtype=torch.float64) * 2 - 1
    original, seen = layers._native_forward, []

    def spy(layout, call, x_, *rest):
        buffer = rest[-1][0]
        memo = layer.__dict__.get("_native_memo")
        seen.append(buffer is not None and memo is not None and memo.find(x_, layout, None) is buffer)
        return original(layout, call, x_, *rest)

    monkeypatch.setattr(layers, "_native_forward", spy)
    with torch.no_grad():
        outputs = [layer(x) for _ in range(3)]  # remembered on the second call, read on the third
    assert seen == [False, False, True] and torch.equal(outputs[0], outputs[2])
