"""kan: a fast Kolmogorov-Arnold Network library and the shared KAN/MLP trainer.

The paper's workflow in a few calls (``docs/api.md`` lists every public name)::

    data = kan.create_dataset(f, ranges=[(-1, 1), (-1, 1)])
    model = kan.KAN([2, 5, 1], num_intervals=5, dtype="float64")
    kan.fit(model, data, kan.TrainConfig(steps=20, lamb=0.01, lamb_entropy=10.0))  # sparsify
    model = kan.prune(model, data["train_input"])                                   # prune
    kan.auto_symbolic(model, data)                                                  # snap
    formulas = kan.symbolic_formula(model, ["x", "y"])                              # formula
    kan.plot(model, data["train_input"], "kan.png")                                 # diagram

``kan.KANRegressor`` wraps the same steps as a scikit-learn style estimator. ``kan.prune`` and
``kan.plot`` are these functions; their modules are imported by name
(``from kan.prune import kept_nodes``).

The public names load on first use (PEP 562), so ``import kan.data`` and the other light
subpackages do not pay for torch, sympy and matplotlib.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names as _EXPORTS, for type checkers and readers
    from kan.dataset import create_dataset
    from kan.estimator import KANRegressor
    from kan.formula import formula_score, normalise
    from kan.layers import KANLayer
    from kan.models import KAN, MLP, load_model
    from kan.plot import plot_kan as plot
    from kan.presets import PYKAN_GRID_PROTOCOL, pykan_config
    from kan.prune import prune
    from kan.symbolic import auto_symbolic, fix_symbolic, suggest_symbolic, symbolic_formula
    from kan.symbolic_library import default_library, register_function
    from kan.train import FitResult, TrainConfig, fit

_EXPORTS = {  # public name -> (module, attribute)
    "create_dataset": ("kan.dataset", "create_dataset"),
    "KANRegressor": ("kan.estimator", "KANRegressor"),
    "formula_score": ("kan.formula", "formula_score"),
    "normalise": ("kan.formula", "normalise"),
    "KANLayer": ("kan.layers", "KANLayer"),
    "KAN": ("kan.models", "KAN"),
    "MLP": ("kan.models", "MLP"),
    "load_model": ("kan.models", "load_model"),
    "plot": ("kan.plot", "plot_kan"),
    "PYKAN_GRID_PROTOCOL": ("kan.presets", "PYKAN_GRID_PROTOCOL"),
    "pykan_config": ("kan.presets", "pykan_config"),
    "prune": ("kan.prune", "prune"),
    "auto_symbolic": ("kan.symbolic", "auto_symbolic"),
    "fix_symbolic": ("kan.symbolic", "fix_symbolic"),
    "suggest_symbolic": ("kan.symbolic", "suggest_symbolic"),
    "symbolic_formula": ("kan.symbolic", "symbolic_formula"),
    "default_library": ("kan.symbolic_library", "default_library"),
    "register_function": ("kan.symbolic_library", "register_function"),
    "FitResult": ("kan.train", "FitResult"),
    "TrainConfig": ("kan.train", "TrainConfig"),
    "fit": ("kan.train", "fit"),
}

__version__ = "0.1.0"
__all__ = [
    "KAN", "KANLayer", "MLP", "load_model", "KANRegressor",
    "create_dataset", "TrainConfig", "FitResult", "fit", "pykan_config", "PYKAN_GRID_PROTOCOL",
    "prune", "auto_symbolic", "suggest_symbolic", "fix_symbolic", "default_library", "register_function",
    "symbolic_formula", "normalise", "formula_score", "plot",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """Load public name ``name`` from its module and keep it (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kan' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(ModuleType):
    """The ``kan`` module: importing submodule ``kan.prune`` or ``kan.plot`` binds the public
    function of that name, not the submodule, as the eager package did."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and name in _EXPORTS and _EXPORTS[name][0] == value.__name__:
            value = getattr(value, _EXPORTS[name][1])
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
