"""The public API: the README's worked example, the names `import kan` offers and their docs,
datasets of one's own, pykan's grid protocol, and what snapping chooses by default."""

import ast
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch

import kan
from kan.formula import round_floats

ROOT = Path(__file__).resolve().parents[2]
F64 = torch.float64


def _readme_example() -> str:
    """The first python block of the README's "Using the library from Python" section."""
    section = ROOT.joinpath("README.md").read_text(encoding="utf-8").split("## Using the library from Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.slow
def test_readme_example_recovers_its_formula(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_readme_example(), "README.md", "exec"), namespace)
    x, y = sympy.symbols("x y")
    assert namespace["model"].width == [2, 1, 1]
    assert sympy.simplify(sympy.nsimplify(round_floats(namespace["formula"], 6)) - sympy.sqrt(x**2 + y**2 + 1)) == 0
    assert namespace["error"] < 1e-10
    assert (tmp_path / "kan.png").stat().st_size > 1000


def test_every_public_name_is_documented_and_listed():
    listed = ROOT.joinpath("docs", "api.md").read_text(encoding="utf-8")
    for name in kan.__all__:
        if name == "__version__":
            continue
        value = getattr(kan, name)
        assert f"`{name}" in listed, f"{name} is not listed in docs/api.md"
        if callable(value):
            assert (value.__doc__ or "").strip(), f"kan.{name} has no docstring"


def test_functions_that_share_a_module_name_leave_the_modules_importable():
    from kan.plot import plot_kan
    from kan.prune import kept_nodes

    assert kan.plot is plot_kan and callable(kan.prune) and callable(kept_nodes)


def _fresh_python(code: str) -> str:
    """What ``code`` prints in a new interpreter (nothing of kan imported yet)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return done.stdout.strip()


def test_a_submodule_imported_first_leaves_the_public_function_in_place():
    code = ("from kan.prune import kept_nodes; from kan.plot import plot_kan; import kan, kan.prune as p; "
            "print(callable(kan.prune), kan.plot is plot_kan, p is kan.prune, callable(kept_nodes))")
    assert _fresh_python(code) == "True True True True"


def test_light_subpackages_import_without_torch():
    """The public names load on first use: data generation and the records need no torch."""
    code = ("import sys, kan, kan.data, kan.records.aggregate; before = 'torch' in sys.modules; kan.KAN; "
            "print(before, 'torch' in sys.modules)")
    assert _fresh_python(code) == "False True"


def test_a_training_job_imports_neither_plots_nor_mlflow_nor_science_nor_sympy():
    """The training chunks (48 jobs in the default run) pay only for what training needs."""
    heavy = ["matplotlib", "mlflow", "kan.plot", "kan.science.registry", "kan.pipeline.tracking", "sympy"]
    code = f"import sys, kan.pipeline.jobs; print([m for m in {heavy!r} if m in sys.modules])"
    assert _fresh_python(code) == "[]"


def test_the_type_checking_imports_name_the_lazy_exports():
    tree = ast.parse(ROOT.joinpath("src", "kan", "__init__.py").read_text(encoding="utf-8"))
    guarded = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    imported = {alias.asname or alias.name: (node.module, alias.name) for node in guarded.body for alias in node.names}
    assert imported == kan._EXPORTS
    assert set(kan.__all__) - {"__version__"} == set(kan._EXPORTS) and set(kan.__all__) <= set(dir(kan))
    with pytest.raises(AttributeError, match="no attribute 'KNA'"):
        kan.KNA


def test_create_dataset_is_seeded_and_checks_its_arguments():
    def f(x):
        return x[:, 0] * x[:, 1]

    first, again = (kan.create_dataset(f, [(0, 1), (-2, 2)], n_train=50, n_test=20, seed=3) for _ in range(2))
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert first["train_input"].shape == (50, 2) and first["test_label"].shape == (20, 1)
    assert first["train_input"][:, 1].min() >= -2 and first["train_input"][:, 1].max() <= 2
    assert torch.allclose(first["train_label"][:, 0], f(first["train_input"]))
    reseeded = kan.create_dataset(f, [(0, 1), (-2, 2)], n_train=50, n_test=20, seed=4)
    assert not torch.equal(first["train_input"], reseeded["train_input"])
    with pytest.raises(ValueError, match="low < high"):
        kan.create_dataset(f, [(1, 0)])
    with pytest.raises(ValueError, match=r"f must return \[n\] or \[n, n_out\] .* got \[3, 1\]"):
        kan.create_dataset(lambda x: x[:3], [(0, 1)])
    with pytest.raises(ValueError, match=r"\(n = 1000\), got \[5\]"):  # the shape f returned, not a reshaped one
        kan.create_dataset(lambda x: x[:5, 0], [(0, 1)])
    with pytest.raises(ValueError, match=r"one finite \(low, high\) .* got \(-1, 1\)"):
        kan.create_dataset(f, (-1, 1))  # one pair instead of a list of pairs
    with pytest.raises(ValueError, match="integers >= 1, got 5.5"):
        kan.create_dataset(f, [(0, 1)], n_train=5.5)
    assert kan.create_dataset(f, [(0, 1), (0, 1)], n_train=4, n_test=4, dtype="float32")["test_input"].dtype == torch.float32
    with pytest.raises(ValueError, match=r"f gave NaN or inf on \d+ of 1000 train inputs"):
        kan.create_dataset(lambda x: torch.log(x[:, 0]), [(-1, 1)])
    with pytest.raises(ValueError, match="one finite \\(low, high\\)"):
        kan.create_dataset(f, [(0, float("inf")), (0, 1)])


def test_register_function_checks_what_it_is_given():
    with pytest.raises(TypeError, match="needs a torch function and a sympy function, both callable"):
        kan.register_function("kan_test_none", None, sympy.sinh)
    with pytest.raises(ValueError, match="complexity must be a number >= 0"):
        kan.register_function("kan_test_text", torch.sinh, sympy.sinh, complexity="high")
    assert "kan_test_none" not in kan.default_library() and "kan_test_text" not in kan.default_library()


def test_pykan_grid_protocol_is_one_option_away():
    config = kan.pykan_config(steps=7, lamb=0.01)
    assert (config.grid_update_every, config.grid_update_until, config.grid_uniform_fraction) == (5, 50, 0.02)
    assert (config.steps, config.lamb) == (7, 0.01)
    with pytest.raises(ValueError, match="stepz"):
        kan.pykan_config(stepz=3)


def _one_edge(fn) -> tuple[kan.KAN, torch.Tensor]:
    """A [1, 1] KAN whose only edge is a G = 20 spline fitted to ``fn`` on [-1, 1]."""
    from kan import spline

    model = kan.KAN([1, 1], num_intervals=20, dtype=F64)
    layer, x = model.layers[0], torch.linspace(-1, 1, 400, dtype=F64)[:, None]
    with torch.no_grad():
        layer.scale_base.zero_()
        layer.coef.copy_(spline.fit_coefficients(x, fn(x)[:, :, None], layer.grid, layer.order))
    return model, x


def test_a_live_edge_is_not_snapped_to_zero_by_default():
    bumpy = lambda t: 0.3 * torch.exp(-((2 * t) ** 2)) + 0.02 * torch.sin(9 * t)  # a gaussian fitting to R² ≈ 0.99
    model, x = _one_edge(bumpy)
    with_zero = kan.suggest_symbolic(model, 0, 0, 0, x, library=["0", *kan.default_library()], top_k=1)[0]
    assert with_zero.name == "0"  # what "0" in the library did to a good fit
    snapped = kan.auto_symbolic(model, x)
    assert "0" not in kan.default_library() and snapped[(0, 0, 0)].name != "0"
    assert 0.95 < snapped[(0, 0, 0)].r2 < 0.996  # good, not near-perfect: the fits "0" used to beat


@pytest.mark.slow
def test_a_one_input_composition_is_discovered_through_the_chain():
    """exp(sin(πx)) on a [1,3,1] KAN pruned to [1,1,1]: the chain's two edges are snapped as one f(g(x))."""
    data = kan.create_dataset(lambda x: torch.exp(torch.sin(math.pi * x[:, 0])), [(-1, 1)], n_train=500, n_test=500)
    model = kan.KAN([1, 3, 1], num_intervals=5, dtype=F64)
    kan.fit(model, data, kan.TrainConfig(steps=20, lamb=0.01, lamb_entropy=10.0))
    with warnings.catch_warnings():  # no node passing θ keeps the strongest: pruning never removes a layer
        warnings.simplefilter("ignore", RuntimeWarning)
        model = kan.prune(model, data["train_input"])
    assert model.width == [1, 1, 1]
    kan.fit(model, data, kan.TrainConfig(steps=30, grid_schedule=(10, 20)))
    kan.auto_symbolic(model, data)
    (formula,) = kan.symbolic_formula(model, ["x"])
    x = sympy.Symbol("x")
    (sine,) = formula.atoms(sympy.sin)
    assert abs(float(sine.args[0].coeff(x)) - math.pi) < 1e-9 and sine.args[0] == sine.args[0].coeff(x) * x
    s = sympy.Symbol("s")
    assert sympy.nsimplify(formula.subs(sine, s)) == sympy.exp(s)  # exp(sin(πx)), every other constant exact
    values = kan.formula_score([formula], ["x"], data["test_input"], data["test_label"])
    assert values < 1e-10 and np.isfinite(values)
