"""Validated config, the expanded sweep and the input functions every rule file uses."""

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from kan.data import code_digest, dataset_dir as kan_dataset_dir, generated_root
from kan.data.knot_download import DOWNLOAD_DIR
from kan.experiments.sweep import chunk_priorities, chunks, expand
from kan.pipeline.config import ConfigError, check_overrides, load_config, load_yaml
from kan.pipeline.jobs import profile_datasets
from kan.pipeline.science_jobs import science_requests
from kan.pipeline.tracking import forget_lost_store, sqlite_path, tracking_uri
from kan.records.aggregate import manifest_state
from kan.records.provenance import rerun_fingerprint
from kan.records.shards import in_shard
from kan.science.registry import resolve_settings

try:
    overrides = workflow.config_settings  # --configfile and --config, which Snakemake merges into config
    check_overrides(config, [*map(load_yaml, overrides.configfiles), overrides.config])
    SETTINGS = load_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
except ConfigError as error:
    raise WorkflowError(str(error)) from None


def local(path):
    """``path`` relative to the working directory when it lies inside it, else absolute."""
    path = Path(path).absolute()
    return str(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)


RESULTS = "results"
CODE_FINGERPRINT = rerun_fingerprint()  # what this code computes on this machine kind (kan.records.provenance)
REPORTS = "reports"
DATASETS = str(generated_root("datasets"))
KNOT_DOWNLOAD_DIR = DOWNLOAD_DIR  # DeepMind's knot table, when science.knots.download is on
TRAININGS = expand(SETTINGS)
CHUNKS = chunks(TRAININGS, SETTINGS["chunk_size"])
EXPERIMENTS = list(SETTINGS["experiments"])
SCIENCE = list(SETTINGS["science"])
TRACKING_URI = tracking_uri(SETTINGS["tracking"]["uri"], RESULTS)
TRACKING_DB = sqlite_path(TRACKING_URI)
ARTIFACTS = local(TRACKING_DB.parent / "mlartifacts") if TRACKING_DB else ""  # a server keeps its own
CONDA_ENV = "../../environment.yml"
PAPER_REFERENCE = local(Path(workflow.basedir) / "reports/reference/paper.yaml")  # committed, beside the Snakefile


wildcard_constraints:
    experiment="[a-z_]+",
    dataset="[^/]+",
    index=r"\d+",
    family="[a-z]+",


SCIENCE_DATA = science_requests(SETTINGS)  # per science experiment, the datasets it reads
try:  # (family, name) -> {"spec", "seed"} of every folder generate_dataset writes
    DATA = profile_datasets(TRAININGS, SCIENCE_DATA)
except ValueError as error:
    raise WorkflowError(str(error)) from None


def dataset_dir(family, name):
    return str(kan_dataset_dir("datasets", family, name))


def external_data(wildcards):
    """The downloaded table a dataset reads (knot/deepmind with science.knots.download), if any."""
    spec = DATA[(wildcards.family, wildcards.name)]["spec"]
    return {"download": KNOT_DOWNLOAD_DIR} if spec.get("path") == KNOT_DOWNLOAD_DIR else {}


def knot_source_options():
    """The knot experiment's resolved options (download URL and pinned digest)."""
    return resolve_settings("knots", SETTINGS["science"].get("knots", {}))


# Scheduling order (Snakemake runs the ready job of highest priority first): the quick jobs every
# other one waits for (datasets, the tracking store), then MLflow logging as soon as an experiment's
# runs are done, then the science experiments (few, long), then training, experiment by experiment
# in kan.experiments.sweep.experiment_order: the one with the costliest chunk first (toy_scaling's
# 100-input chunk would otherwise end the run), then those with more trainings, so that their
# logging, the longest, overlaps the training of the others instead of ending the run. A shard run
# (the `shard` key: make paper-shard, make paper-rest) trains dataset by dataset in that order, so its
# shards complete one after another and can be published as they do.
TRAIN_PRIORITY = chunk_priorities(CHUNKS, by_dataset=bool(SETTINGS["shard"]))
SCIENCE_PRIORITY = max(TRAIN_PRIORITY.values(), default=0) + 1
LOGGING_PRIORITY = SCIENCE_PRIORITY + 1
PREREQUISITE_PRIORITY = LOGGING_PRIORITY + 1


def chunk_manifest(name):
    return f"{RESULTS}/chunks/{name}.json"


def experiment_manifests(experiment):
    return [chunk_manifest(name) for name in CHUNKS if name.split("/", 1)[0] == experiment]


def experiment_datasets(experiment):
    return sorted({dataset_dir(t.family, t.dataset) for t in TRAININGS if t.experiment == experiment})


def all_manifests():
    return [chunk_manifest(name) for name in CHUNKS]


def chunk_of(wildcards):
    return CHUNKS[f"{wildcards.experiment}/{wildcards.dataset}/{wildcards.index}"]


def chunk_datasets(wildcards):
    """The dataset folders a chunk trains on, keyed "<family>/<name>"."""
    return {f"{t.family}/{t.dataset}": dataset_dir(t.family, t.dataset) for t in chunk_of(wildcards)}


def science_datasets(wildcards):
    """The dataset folders science experiment ``wildcards.name`` reads, keyed "<family>/<name>"."""
    return {r.key: dataset_dir(r.family, r.name) for r in SCIENCE_DATA[wildcards.name]}


def science_results():
    """The output folders of the configured science experiments."""
    return [f"{RESULTS}/science/{name}" for name in SCIENCE]


def shard_targets():
    """The train-chunk manifests and science results of the configured shard (``shard: k/N``;
    every one of them without it)."""
    targets = {name: chunk_manifest(name) for name in CHUNKS}
    targets |= {f"science:{name}": result for name, result in zip(SCIENCE, science_results())}
    try:
        return [targets[name] for name in in_shard(targets, SETTINGS["shard"] or "1/1")]
    except ValueError as error:
        raise WorkflowError(f"config key shard: {error}") from None


def tracking_target():
    """The marker written once the tracking store exists. The store (results/mlflow.db) is not
    an output itself, so Snakemake never deletes it when the rule reruns."""
    return f"{RESULTS}/tracking/store.json"


if forget_lost_store(TRACKING_URI, Path(tracking_target()).parent):  # the database was deleted or moved
    print(f"{TRACKING_DB} is missing: recreating the MLflow store and logging every run again", file=sys.stderr)


def final_targets():
    return [
        f"{RESULTS}/tables/runs.csv",
        f"{REPORTS}/figures/pareto",
        f"{REPORTS}/figures/scaling",
        f"{REPORTS}/figures/staircase",
        f"{REPORTS}/tables",
        f"{REPORTS}/paper_vs_ours.md",
        *[f"{RESULTS}/tracking/logged/{experiment}.json" for experiment in EXPERIMENTS],
        f"{RESULTS}/tables/science.csv",
        *[f"{REPORTS}/figures/science/{name}" for name in SCIENCE],
        *([f"{RESULTS}/tracking/science.json"] if SCIENCE else []),
    ]
