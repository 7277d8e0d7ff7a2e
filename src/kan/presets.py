"""Training presets: the reference implementation's (pykan's) grid protocol as one option.

Our trainer keeps uniform grids and moves them only when G changes (``docs/protocol.md``).
pykan's ``fit`` instead re-fits every grid to the training inputs before steps 0, 5, …, 45 of a
phase (its ``grid_update_num=10`` over ``stop_grid_update_step=50``), on a grid that is 98 % sample
quantiles and 2 % uniform (its ``grid_eps=0.02``). The compiled layer kernel runs such
non-uniform grids as fast as uniform ones; without it (GPU, ``KAN_NATIVE=0``) layers take the plain ops.
"""

from __future__ import annotations

from typing import Any

from kan.train import TrainConfig

PYKAN_GRID_PROTOCOL: dict[str, Any] = {"grid_update_every": 5, "grid_update_until": 50, "grid_uniform_fraction": 0.02}


def pykan_config(**options: Any) -> TrainConfig:
    """A :class:`~kan.train.TrainConfig` with pykan's grid protocol (:data:`PYKAN_GRID_PROTOCOL`);
    ``options`` set the rest (and may override it), e.g. ``pykan_config(steps=50, lamb=0.01)``."""
    return TrainConfig.from_dict({**PYKAN_GRID_PROTOCOL, **options})
