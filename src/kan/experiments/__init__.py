"""The paper's experiments as data: config validation, sweep expansion, chunked training,
per-run files, aggregate tables and regression checks. MLflow is only touched by the
tracking jobs in :mod:`kan.experiments.jobs` (through :mod:`kan.tracking`)."""
