"""Adapters from the science modules to the pipeline: each runner takes the experiment's
options (built from the settings by :mod:`kan.science.registry`) and the output folder, runs the
module, writes its tables, figures and ``summary.json`` (:mod:`kan.records.science_outputs`) and returns
the summary, whose keys are ``<what>.<quantity>``.

Options that are not the modules' own (data sizes, seeds, systems, the knot data fallback) are
the small dataclasses below. The runners that read datasets (knots, localization) take the
folders the pipeline generated them into (:data:`Folders`) and generate them in memory when
given none; ``knot_datasets`` / ``localization_datasets`` name what they read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from kan.data import DatasetRequest, generate
from kan.data.knot import TASKS as KNOT_TASKS
from kan.data.knot import available_task
from kan.data.knot_download import DEEPMIND_URL, DOWNLOAD_DIR
from kan.records.science_outputs import Outputs
from kan.science.continual import ContinualConfig, plot_continual, run_continual
from kan.science.knot_plots import plot_accuracies, plot_importance
from kan.science.knots import KnotConfig, load_knot_data, run_knots
from kan.science.localization import SYSTEMS, LocalizationConfig, plot_mobility_edges, run_localization
from kan.science.pde import PDEConfig, plot_pde_scaling, run_pde_experiment
from kan.science.stages import Stages
from kan.science.unsupervised import DiscoveryConfig, discover_relations, plot_dependence_scores, true_relations

Summary = dict[str, float]
Folders = Mapping[str, Path | str]  # "<family>/<name>" -> the dataset folder the pipeline wrote


def dataset_folder(request: DatasetRequest, folders: Folders | None) -> Path | str | None:
    """The folder of ``request`` in ``folders``; None (generate in memory) when no folders are
    given; ValueError when they lack it."""
    if folders is None:
        return None
    if request.key not in folders:
        raise ValueError(f"no dataset folder for {request.key}; given: {', '.join(folders) or 'none'}")
    return folders[request.key]


def slug(text: str) -> str:
    """``"KAN [17,1,C]"`` -> ``"kan_17_1_c"``: a name usable in summary keys."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# ---------------------------------------------------------------- PDE (§3.4)


def run_pde(config: PDEConfig, out_dir: Path, stages: Stages | None = None) -> Summary:
    """Poisson PINN: errors of the KAN at its finest grid and of the most accurate MLP (``stages``:
    see :func:`kan.science.pde.run_pde_experiment`)."""
    table = run_pde_experiment(config, stages)
    out = Outputs(out_dir)
    out.table("errors", table)
    plot_pde_scaling(table, out.figure("pde_errors"))
    kan = table[table["model"] == "KAN"].iloc[-1]  # the finest grid
    mlps = table[table["model"] == "MLP"].sort_values("l2")
    values: dict[str, float] = {"kan.grid": kan["grid"]}
    for name, row in {"kan": kan, **({"mlp": mlps.iloc[0]} if len(mlps) else {})}.items():
        values |= {f"{name}.l2": row["l2"], f"{name}.h1": row["h1"], f"{name}.l2_squared": row["l2"] ** 2,
                   f"{name}.params": row["n_params"]}
    if len(mlps):
        values["mlp_over_kan.l2_squared"] = values["mlp.l2_squared"] / values["kan.l2_squared"]
    return out.summary(values)


# ---------------------------------------------------------------- continual learning (§3.5)


def run_continual_learning(config: ContinualConfig, out_dir: Path) -> Summary:
    """Five peaks in sequence: forgetting (RMSE on earlier peaks) and kept peak heights, mean over seeds."""
    result = run_continual(config)
    out = Outputs(out_dir)
    out.table("forgetting", result.forgetting())
    out.table("phases", result.summary)
    out.table("peaks", result.errors)
    plot_continual(result.predictions, out.figure("continual"))
    last = result.summary["phase"].max()
    final = result.summary[result.summary["phase"] == last].groupby("model")
    earlier = result.errors[(result.errors["phase"] == last) & (result.errors["peak"] < last)].groupby("model")
    values: dict[str, float] = {}
    for model, forgetting in result.forgetting().groupby("model")["forgetting"].mean().items():
        key = model.lower()
        values |= {f"{key}.forgetting": forgetting, f"{key}.rmse_current": final["rmse_current"].mean()[model],
                   f"{key}.earlier_peak_height": earlier["height"].mean()[model]}
    if {"kan.forgetting", "mlp.forgetting"} <= values.keys():
        values["mlp_over_kan.forgetting"] = values["mlp.forgetting"] / values["kan.forgetting"]
    return out.summary(values)


# ---------------------------------------------------------------- unsupervised discovery (§4.2)


@dataclass(frozen=True)
class DiscoveryData:
    """The synthetic 6-variable set and the seeds (the paper reports seeds 0 and 2024)."""

    seeds: tuple[int, ...] = (0, 2024)
    n_samples: int = 1000
    data_seed: int = 0


def run_unsupervised(config: DiscoveryConfig, data: DiscoveryData, out_dir: Path) -> Summary:
    """One discovery per seed; which seed found which true relation (1/0), and counts."""
    frame = generate("synthetic", "unsupervised_6var", {"n_train": data.n_samples, "n_test": 10}, data.data_seed).train
    table = discover_relations(frame, data.seeds, config)
    out = Outputs(out_dir)
    out.table("discoveries", table)
    plot_dependence_scores(table, out.figure("dependence_scores"))
    relations = true_relations()
    found = [frozenset(v.split(",")) if v else frozenset() for v in table["variables"]]
    values: dict[str, float] = {}
    for seed, variables, accuracy in zip(table["seed"], found, table["accuracy"]):
        values[f"seed_{seed}.accuracy"] = accuracy
        values |= {f"seed_{seed}.found.{slug(name)}": float(variables == true) for name, true in relations.items()}
    values |= {f"seeds.{slug(name)}": float(found.count(true)) for name, true in relations.items()}
    values["seeds.none"] = float(found.count(frozenset()))
    values["seeds.other"] = float(sum(v not in relations.values() and bool(v) for v in found))
    return out.summary(values)


# ---------------------------------------------------------------- knots (§4.3)


@dataclass(frozen=True)
class KnotSource:
    """Where DeepMind's knot rows come from besides the configured path.

    ``download``: DeepMind's full table, which the workflow downloads from ``download_url`` into
    ``kan.data.knot_download.DOWNLOAD_DIR`` (checked against ``download_sha256`` when given);
    offline, the rows come from the configured path (default: the public subset), else the
    shipped SnapPy table, and the report says which. Without a download, ``fallback_source`` is
    the knot task to use when the configured path is missing (e.g. ``snappy``; None: an error).
    """

    fallback_source: str | None = None
    download: bool = False
    download_url: str = DEEPMIND_URL
    download_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.fallback_source is not None and self.fallback_source not in KNOT_TASKS:
            raise ValueError(f"fallback_source must be one of {', '.join(KNOT_TASKS)}, got {self.fallback_source!r}")


def knot_source(config: KnotConfig, source: KnotSource) -> KnotConfig:
    """``config`` reading the download folder (its configured path kept as the offline
    fallback) when ``source.download``; else ``config``, or a copy reading
    ``source.fallback_source`` when its DeepMind path is missing (:func:`kan.data.knot.available_task`)."""
    if source.download and config.source == "deepmind":
        offline = {"offline_path": config.path} if config.path is not None else {}
        return replace(config, path=DOWNLOAD_DIR, extra={**config.extra, **offline})
    task = available_task(config.source, config.path, source.fallback_source)
    return config if task == config.source else replace(config, source=task, path=None)


def knot_datasets(config: KnotConfig, source: KnotSource) -> list[DatasetRequest]:
    """The dataset the knot study reads: the configured source, or its fallback."""
    return [knot_source(config, source).dataset()]


def _knot_summary(tables: Mapping[str, pd.DataFrame], data: Any) -> Summary:
    values: dict[str, float] = {
        "data.deepmind": float(data.meta["name"] == "deepmind"), "data.fit_rows": len(data.fit),
        "data.test_rows": len(data.test), "data.classes": len(data.classes),
    }
    for row in pd.concat([tables["models"], tables["ablations"]]).itertuples():
        values[f"{slug(row.model)}.accuracy"] = row.test_accuracy
        if row.model != "majority class":
            values[f"{slug(row.model)}.params"] = row.params
    ranks = tables["importance"].set_index("name")["rank"]
    values |= {f"rank.{name}": ranks[name] for name in ("mu_r", "mu_i", "lambda")}
    for row in tables["formulas"].itertuples():
        values |= {f"formula.{slug(row.formula)}.accuracy": row.fitted_accuracy,
                   f"formula.{slug(row.formula)}.raw_accuracy": row.raw_accuracy}
    known = tables["known_relations"]
    values["unsupervised.runs"] = len(tables["unsupervised"])
    values["unsupervised.clusters"] = len(tables["clusters"])
    values |= {f"unsupervised.{slug(r.relation)}": r.runs_containing for r in known.itertuples()}
    return values


def run_knot_study(config: KnotConfig, source: KnotSource, out_dir: Path, folders: Folders | None = None,
                   stages: Stages | None = None) -> Summary:
    """KAN vs DeepMind's MLP on the signature, ablations, formulas and unsupervised relations;
    the data from ``folders`` (see :func:`knot_datasets`), generated in memory when None
    (``stages``: see :func:`kan.science.knots.run_knots`)."""
    config = knot_source(config, source)
    data = load_knot_data(config, dataset_folder(config.dataset(), folders))
    tables = run_knots(config, data, stages)
    out = Outputs(out_dir)
    for name, frame in tables.items():
        out.table(name, frame)
    files = ", ".join(f"{f['file']} ({f['sha256'][:12]})" for f in data.meta["files"])
    out.table("data", pd.DataFrame([{"source": data.meta["name"], "files": files, "fit_rows": len(data.fit),
                                     "val_rows": len(data.val), "test_rows": len(data.test),
                                     "classes": " ".join(map(str, data.classes))}]))
    plot_importance(tables["importance"], out.figure("feature_importance"))
    plot_accuracies(pd.concat([tables["models"], tables["ablations"]]), out.figure("accuracies"))
    return out.summary(_knot_summary(tables, data))


# ---------------------------------------------------------------- Anderson localization (§4.4)


@dataclass(frozen=True)
class Systems:
    """Which quasiperiodic models to study."""

    systems: tuple[str, ...] = ("mosaic", "gaam", "maam")

    def __post_init__(self) -> None:
        unknown = [s for s in self.systems if s not in SYSTEMS]
        if unknown or not self.systems:
            raise ValueError(f"systems must be a non-empty subset of {', '.join(SYSTEMS)}, got {list(self.systems)}")


def localization_datasets(config: LocalizationConfig, systems: Systems) -> list[DatasetRequest]:
    """The Anderson dataset of every studied system."""
    return [config.dataset(system) for system in systems.systems]


def run_mobility_edges(config: LocalizationConfig, systems: Systems, out_dir: Path, folders: Folders | None = None) -> Summary:
    """Per system: test accuracy of the exact edge, the KAN and its auto and guided formulas; the
    states from ``folders`` (see :func:`localization_datasets`), generated in memory when None."""
    datasets = {s: dataset_folder(config.dataset(s), folders) for s in systems.systems}
    table, results = run_localization(config, systems.systems, datasets)
    out = Outputs(out_dir)
    out.table("accuracy", table)
    plot_mobility_edges(results, out.figure("mobility_edges"))
    values = {f"{r.system}.{r.method.lower()}.accuracy": r.test_accuracy for r in table.itertuples()}
    values |= {f"{r.system}.kan.params": r.params for r in table[table["method"] == "KAN"].itertuples()}
    return out.summary(values)
