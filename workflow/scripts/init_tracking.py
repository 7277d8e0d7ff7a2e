"""Snakemake adapter: create the MLflow store and experiment (kan.pipeline.tracking_jobs.init_tracking)."""

from kan.pipeline.joblog import setup_logging
from kan.pipeline.tracking_jobs import init_tracking

setup_logging(snakemake.log[0])
init_tracking(snakemake.params.uri, snakemake.params.experiment, snakemake.params.artifacts or None, snakemake.output[0])
