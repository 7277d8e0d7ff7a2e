"""The compiled layer kernel (kan.native): same numbers as the PyTorch path, deterministic,
cached builds, and a clean fallback where no C compiler exists."""

import copy
import os
import pickle
import subprocess
import sys

import pytest
import torch

from kan import KAN, create_dataset, native, pykan_config
from kan.layers import KANLayer
from kan.train import fit

pytestmark = pytest.mark.skipif(not native.available(), reason="compiled kernel unavailable (no C compiler)")

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
def test_compiled_kernel_matches_the_pytorch_path(dtype, order, out_dim, activation):
    _check_against_pytorch(_layer(dtype, order, out_dim, activation), batch=700)


def test_wide_kernel_matches_over_several_runs_of_samples():
    """Batches beyond WIDE_RUN samples (the wide backward's float32 partial sums), in float32."""
    _check_against_pytorch(_layer(torch.float32, 3, 20), batch=2600)


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
    _check_against_pytorch(layer, x=x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("order", [1, 3, 5])
@pytest.mark.parametrize("out_dim", [1, 14])
def test_compiled_kernel_matches_the_plain_path_on_hand_made_knots(dtype, order, out_dim):
    _check_against_pytorch(_hand_made_layer(dtype, order, out_dim), batch=700)


def _check_against_pytorch(layer, batch=None, x=None):
    """The kernel's output and gradients against the plain path on ``x`` (default: ``batch``
    samples in [-1.6, 1.6], some off the grid, and the uniform grid's ends)."""
    dtype = layer.coef.dtype
    if x is None:
        x = (torch.rand(batch, 3, generator=torch.Generator().manual_seed(1), dtype=dtype) * 2 - 1) * 1.6
        x[:2] = torch.tensor([-1.0, 1.0], dtype=dtype)[:, None]  # knots exactly
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


def test_without_a_compiler_layers_use_the_pytorch_path(tmp_path):
    done = _python(PROBE, CC=str(tmp_path / "no-such-cc"), KAN_NATIVE_CACHE=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
    assert "compiled layer kernel unavailable (no C compiler found" in done.stderr


def test_switched_off_by_environment(tmp_path):
    done = _python(PROBE, KAN_NATIVE="0", KAN_NATIVE_CACHE=str(tmp_path))
    assert done.stdout.split() == ["False", "True"] and "unavailable" not in done.stderr
    assert not list(tmp_path.iterdir())  # nothing was built


def test_build_is_cached(tmp_path):
    for _ in range(2):
        done = _python(PROBE, KAN_NATIVE_CACHE=str(tmp_path))
        assert done.stdout.split() == ["True", "True"], done.stderr
    assert [p.suffix for p in tmp_path.iterdir()] == [".so"]  # built once, no scratch left


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


def test_ctypes_mirror_matches_the_built_kernel_layout(monkeypatch):
    """The Python mirror of ``kan_shape`` is checked against the compiled library's own offsets,
    so a field added or reordered on one side only is caught at load instead of corrupting calls."""
    library = native._library()
    assert native.layout_mismatch(library) == ""
    fields = list(native.Shape._fields_)
    fields[4], fields[5] = fields[5], fields[4]  # order and activation swapped

    class Swapped(native.ctypes.Structure):
        _fields_ = fields

    monkeypatch.setattr(native, "Shape", Swapped)
    found = native.layout_mismatch(library)
    assert "order" in found and "activation" in found and "num_basis" not in found
    assert native.max_order() >= 3
