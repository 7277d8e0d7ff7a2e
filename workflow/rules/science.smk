"""Science experiments of the paper (sections 3.4-4.4): one job per configured experiment runs
it, on the dataset folders it reads (knots, localization: from generate_dataset), through
kan.science.registry into results/science/<name>/ (tables, figures, summary.json,
run.json) and copies its figures to reports/figures/science/<name>/; one table collects every
summary; one job logs them to MLflow (idempotent, by config id)."""


rule science:
    input:
        unpack(science_datasets),
    output:
        results=directory(f"{RESULTS}/science/{{name}}"),
        figures=report(
            directory(f"{REPORTS}/figures/science/{{name}}"),
            patterns=["{figure}.png"],
            caption="../report/science.rst",
            category="Science experiments",
            subcategory="{name}",
        ),
    wildcard_constraints:
        name="[a-z_]+",
    params:
        settings=lambda w: SETTINGS["science"][w.name],  # functions: config text is not a wildcard pattern
        profile=lambda w: SETTINGS["profile"],
        datasets=science_datasets,
        fingerprint=lambda w: rerun_fingerprint(science=w.name),  # a change of its numbers reruns the experiment
    log:
        "logs/science/{name}.log",
    threads: 1
    priority: SCIENCE_PRIORITY
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        CONDA_ENV
    script:
        "../scripts/run_science.py"


rule aggregate_science:
    input:
        science_results(),
    output:
        f"{RESULTS}/tables/science.csv",
    log:
        "logs/science/aggregate.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        CONDA_ENV
    script:
        "../scripts/aggregate_science.py"


rule log_science:
    input:
        store=tracking_target(),  # a recreated store logs every run again
        results=science_results(),
    output:
        f"{RESULTS}/tracking/science.json",
    params:
        uri=lambda w: TRACKING_URI,
        experiment=lambda w: SETTINGS["tracking"]["experiment"],
    log:
        "logs/tracking/science.log",
    threads: 1
    priority: LOGGING_PRIORITY
    resources:
        mem_mb=2000,
        runtime=30,
        mlflow_db=1,
    conda:
        CONDA_ENV
    script:
        "../scripts/log_science.py"
