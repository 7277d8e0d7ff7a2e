"""The top layer, glue between the workflow and the packages below: workflow config loading and
validation (``config``), the Snakemake jobs (``jobs``: training and the plan's helpers;
``tracking_jobs``: MLflow; ``science_jobs``) and what each of them does first and last
(``joblog``), MLflow tracking (``tracking``), the ci regression checks (``regression``), resuming
after a kill (``resume``) and the command line (``cli``, run as ``python -m kan``)."""
