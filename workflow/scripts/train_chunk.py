"""Snakemake adapter: train one chunk of the sweep (kan.pipeline.jobs.train)."""

from kan.pipeline.joblog import setup_logging
from kan.pipeline.jobs import train

setup_logging(snakemake.log[0])
train(snakemake.params.trainings, snakemake.params.datasets, snakemake.params.results, snakemake.output[0],
      snakemake.params.profile, snakemake.params.published)
