"""Snakemake adapter: download DeepMind's knot table (kan.data.knot_download.fetch)."""

from kan.data.knot_download import fetch
from kan.pipeline.joblog import setup_logging

setup_logging(snakemake.log[0])
fetch(snakemake.params.url, snakemake.output[0], sha256=snakemake.params.sha256)
