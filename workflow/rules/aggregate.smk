"""Aggregation: the runs table and the history table that every report reads."""


rule aggregate_runs:
    input:
        all_manifests(),
    output:
        runs=f"{RESULTS}/tables/runs.csv",
        histories=f"{RESULTS}/tables/histories.parquet",
    log:
        "logs/aggregate.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        CONDA_ENV
    script:
        "../scripts/aggregate_runs.py"
