"""Settings and shared fixtures of the whole test suite: one intra-op thread, repository paths,
a tiny sweep and fake run folders (used by the records, experiments and pipeline tests)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from kan import MLP
from kan.data import generate_to_dir
from kan.experiments.sweep import Training, expand
from kan.pipeline.config import load_config
from kan.records.runfiles import run_dir, write_run

# One intra-op thread unless KAN_TEST_THREADS says otherwise: on small shared machines torch's
# default (one thread per core) oversubscribes the CPU and makes small fits many times slower.
torch.set_num_threads(int(os.environ.get("KAN_TEST_THREADS", "1")))

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

TINY = {
    "profile": "test",
    "chunk_size": 4,
    "datasets": {"specs": {"synthetic": {"n_train": 60, "n_test": 40}}},
    "experiments": {
        "toy_scaling": {
            "family": "synthetic",
            "datasets": ["xy"],
            "seeds": [0, 1],
            "train": {"steps": 2, "grid_schedule": [3, 5]},
            "kan": {"paper_shape": True, "widths": [3], "depths": [2], "prune": {"lambdas": [0.01]}},
            "mlp": {"widths": [4], "depths": [2], "activations": ["tanh"]},
        }
    },
}


@pytest.fixture(scope="session")
def load() -> Callable[[Any], dict]:
    """``load(config)``: validate a config mapping or YAML path against the schema."""
    return lambda config: load_config(config, SCHEMA)


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def tiny_sweep(load: Callable[[Any], dict]) -> list[Training]:
    """The expanded sweep of TINY."""
    return expand(load(TINY))


@pytest.fixture
def tiny_config() -> dict:
    """A one-experiment config: human, unpruned, pruned KANs and an MLP on xy, two seeds."""
    return copy.deepcopy(TINY)


@pytest.fixture(scope="session")
def xy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The xy dataset of TINY, generated once into a temporary datasets root."""
    root = tmp_path_factory.mktemp("datasets")
    generate_to_dir("synthetic", "xy", TINY["datasets"]["specs"]["synthetic"], 0, root / "synthetic" / "xy")
    return root


def fake_run(results: Path, run_id: str, **metrics: Any) -> Path:
    """Write a run folder with a small untrained MLP and a 3-step history; ``metrics``
    override the defaults of metrics.json."""
    record = {
        "run_id": run_id, "experiment": "toy_scaling", "family": "synthetic", "dataset": "xy",
        "model": "mlp", "variant": "mlp", "shape": "[2,4,1]", "initial_shape": "[2,4,1]", "depth": 2,
        "width": 4, "activation": "tanh", "lamb": 0.0, "seed": 0, "grid": 0, "order": 0, "n_params": 17,
        "steps": 3, "train_rmse": 0.1, "test_rmse": 0.2, "test_accuracy": float("nan"), "status": "ok",
        "seconds": 1.5, "final_stage": True, "config": {"train": {"steps": 3}, "prune": None}, **metrics,
    }
    history = [{"step": s, "grid": 0, "train_rmse": 0.3 / s, "test_rmse": 0.4 / s, "train_loss": 0.09 / s**2,
                "test_loss": 0.16 / s**2, "regularization": 0.0} for s in (1, 2, 3)]
    directory = run_dir(results, record["experiment"], record["model"], run_id)
    return write_run(directory, record, history, MLP([2, 4, 1], seed=0))


@pytest.fixture
def two_runs(tmp_path: Path) -> list[Path]:
    """Two fake runs (a KAN-labelled one and an MLP) under ``tmp_path/results``."""
    results = tmp_path / "results"
    return [fake_run(results, "aaaa00000001", variant="unpruned", model="kan", grid=5, order=3, activation=""),
            fake_run(results, "bbbb00000002", test_rmse=0.05)]


@pytest.fixture
def make_run() -> Callable[..., Path]:
    """``make_run(results, run_id, **metrics)``: write a fake run folder (:func:`fake_run`)."""
    return fake_run
