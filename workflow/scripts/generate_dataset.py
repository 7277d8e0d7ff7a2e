"""Snakemake adapter: generate one dataset folder (kan.data.generate_to_dir)."""

from kan.data import generate_to_dir
from kan.pipeline.joblog import setup_logging

setup_logging(snakemake.log[0])
generate_to_dir(snakemake.wildcards.family, snakemake.wildcards.name, snakemake.params.spec, snakemake.params.seed, snakemake.output[0])
