"""Snakemake adapter: run one science experiment on its dataset folders (kan.pipeline.science_jobs.run_science)."""

from kan.pipeline.joblog import setup_logging
from kan.pipeline.science_jobs import run_science

setup_logging(snakemake.log[0])
run_science(snakemake.wildcards.name, snakemake.params.settings, snakemake.output.results, snakemake.output.figures,
            snakemake.params.profile, snakemake.params.datasets, workers=snakemake.threads)
