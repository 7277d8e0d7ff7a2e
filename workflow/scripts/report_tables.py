"""Snakemake adapter: markdown tables of the runs and the science experiments (kan.reporting.tables)."""

import pandas as pd

from kan.pipeline.joblog import setup_logging
from kan.reporting.tables import copy_science_tables, write_tables

setup_logging(snakemake.log[0])
write_tables(pd.read_csv(snakemake.input.runs), snakemake.output[0])
copy_science_tables(snakemake.input.science, snakemake.output[0])
