"""Snakemake adapter: build runs.csv and histories.parquet (kan.experiments.aggregate)."""

from kan.experiments.aggregate import write_tables
from kan.experiments.jobs import setup_logging

setup_logging(snakemake.log[0])
write_tables(snakemake.input, snakemake.output.runs, snakemake.output.histories)
