"""Snakemake adapter: results/tables/science.csv from every summary.json (kan.records.aggregate)."""

from kan.pipeline.joblog import setup_logging
from kan.records.aggregate import science_table

setup_logging(snakemake.log[0])
science_table(snakemake.input).to_csv(snakemake.output[0], index=False)
