"""MLflow: one rule creates the store (SQLite by default) and the experiment; one logging job
per experiment reads finished run files and logs them idempotently. Logging jobs share the
`mlflow_db` resource so that at most one writes to a SQLite store at a time."""


rule tracking_store:
    output:
        tracking_target(),
    params:
        uri=lambda w: TRACKING_URI,  # functions: config text is not a wildcard pattern
        experiment=lambda w: SETTINGS["tracking"]["experiment"],
        artifacts=lambda w: ARTIFACTS,
    log:
        "logs/tracking/store.log",
    threads: 1
    priority: PREREQUISITE_PRIORITY
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CONDA_ENV
    script:
        "../scripts/init_tracking.py"


rule log_runs:
    input:
        store=tracking_target(),  # a recreated store logs every run again
        manifests=lambda w: experiment_manifests(w.experiment),
        datasets=lambda w: experiment_datasets(w.experiment),  # for the KAN diagrams
    output:
        f"{RESULTS}/tracking/logged/{{experiment}}.json",
    params:
        uri=lambda w: TRACKING_URI,
        experiment=lambda w: SETTINGS["tracking"]["experiment"],
        diagrams=SETTINGS["tracking"]["diagrams"],
        datasets=DATASETS,
        configured=EXPERIMENTS,  # runs of experiments dropped from the config are retired
    log:
        "logs/tracking/{experiment}.log",
    threads: 1
    priority: LOGGING_PRIORITY
    resources:
        mem_mb=4000,
        runtime=120,
        mlflow_db=1,
    conda:
        CONDA_ENV
    script:
        "../scripts/log_runs.py"
