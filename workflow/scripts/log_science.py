"""Snakemake adapter: log the science experiments to MLflow (kan.pipeline.tracking_jobs.log_science)."""

from kan.pipeline.joblog import setup_logging
from kan.pipeline.tracking_jobs import log_science

setup_logging(snakemake.log[0])
log_science(snakemake.params.uri, snakemake.params.experiment, snakemake.input.results, snakemake.output[0])
