"""Snakemake adapter: markdown tables of the runs (kan.reporting.tables.write_tables)."""

import pandas as pd

from kan.experiments.jobs import setup_logging
from kan.reporting.tables import write_tables

setup_logging(snakemake.log[0])
write_tables(pd.read_csv(snakemake.input.runs), snakemake.output[0])
