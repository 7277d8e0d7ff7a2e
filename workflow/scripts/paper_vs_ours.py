"""Snakemake adapter: reports/paper_vs_ours.md (kan.reporting.compare.paper_vs_ours)."""

from pathlib import Path

import pandas as pd

from kan.pipeline.joblog import setup_logging
from kan.pipeline.jobs import report_deviations
from kan.reporting.compare import paper_vs_ours
from kan.reporting.fidelity import Causes
from kan.science.registry import science_deviations

setup_logging(snakemake.log[0])
deviations = report_deviations(snakemake.params.deviations, snakemake.input.datasets,
                               science_deviations(snakemake.params.science))
paper_vs_ours(pd.read_csv(snakemake.input.runs), Path(snakemake.input.reference), deviations, Path(snakemake.output[0]),
              pd.read_csv(snakemake.input.science),
              Causes.of_profile(snakemake.params.miss_causes, snakemake.params.profile))
