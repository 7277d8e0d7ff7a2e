"""Datasets: one folder per task, generated once and shared by every experiment: the training
sweep's and those the science experiments read (knot table, Anderson localization states)."""


rule generate_dataset:
    output:
        directory(f"{DATASETS}/{{family}}/{{name}}"),
    params:
        spec=lambda w: DATA[(w.family, w.name)]["spec"],
        seed=lambda w: DATA[(w.family, w.name)]["seed"],
    log:
        "logs/data/{family}/{name}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CONDA_ENV
    script:
        "../scripts/generate_dataset.py"
