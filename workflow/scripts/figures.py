"""Snakemake adapter: one family of report figures from kan.reporting.figures (params.figure)."""

from pathlib import Path

import pandas as pd

from kan.pipeline.joblog import setup_logging
from kan.reporting import figures

setup_logging(snakemake.log[0])
out = Path(snakemake.output[0])
out.mkdir(parents=True, exist_ok=True)
tables = [pd.read_csv(snakemake.input.runs)]
if "histories" in snakemake.input.keys():
    tables.append(pd.read_parquet(snakemake.input.histories))
getattr(figures, snakemake.params.figure)(*tables, out)
