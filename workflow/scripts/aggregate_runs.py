"""Snakemake adapter: build runs.csv and histories.parquet (kan.records.aggregate)."""

from kan.pipeline.joblog import setup_logging
from kan.records.aggregate import write_tables

setup_logging(snakemake.log[0])
write_tables(snakemake.input, snakemake.output.runs, snakemake.output.histories)
