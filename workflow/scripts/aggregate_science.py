"""Snakemake adapter: results/tables/science.csv from every summary.json (kan.experiments.aggregate)."""

from kan.experiments.aggregate import science_table
from kan.experiments.jobs import setup_logging

setup_logging(snakemake.log[0])
science_table(snakemake.input).to_csv(snakemake.output[0], index=False)
