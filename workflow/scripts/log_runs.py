"""Snakemake adapter: log one experiment's finished runs to MLflow (kan.pipeline.tracking_jobs.log_runs)."""

from kan.pipeline.joblog import setup_logging
from kan.pipeline.tracking_jobs import log_runs

setup_logging(snakemake.log[0])
log_runs(snakemake.params.uri, snakemake.params.experiment, snakemake.input.manifests, snakemake.params.diagrams,
         snakemake.params.datasets, snakemake.output[0], snakemake.wildcards.experiment, snakemake.params.configured)
