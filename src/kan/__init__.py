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
"""

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

__version__ = "0.1.0"
__all__ = [
    "KAN", "KANLayer", "MLP", "load_model", "KANRegressor",
    "create_dataset", "TrainConfig", "FitResult", "fit", "pykan_config", "PYKAN_GRID_PROTOCOL",
    "prune", "auto_symbolic", "suggest_symbolic", "fix_symbolic", "default_library", "register_function",
    "symbolic_formula", "normalise", "formula_score", "plot",
    "__version__",
]
