"""Reports: figures, markdown tables and the paper-vs-ours comparison, all from the
aggregate tables and the science results (functions in kan.reporting). `snakemake --report`
collects them."""


rule figures_pareto:
    input:
        runs=f"{RESULTS}/tables/runs.csv",
    output:
        report(
            directory(f"{REPORTS}/figures/pareto"),
            patterns=["{name}.png"],
            caption="../report/pareto.rst",
            category="Pareto frontiers",
        ),
    params:
        figure="pareto_frontiers",
    log:
        "logs/report/pareto.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        CONDA_ENV
    script:
        "../scripts/figures.py"


rule figures_scaling:
    input:
        runs=f"{RESULTS}/tables/runs.csv",
    output:
        report(
            directory(f"{REPORTS}/figures/scaling"),
            patterns=["{name}.png"],
            caption="../report/scaling.rst",
            category="Scaling laws",
        ),
    params:
        figure="scaling_plot",
    log:
        "logs/report/scaling.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        CONDA_ENV
    script:
        "../scripts/figures.py"


rule figures_staircase:
    input:
        runs=f"{RESULTS}/tables/runs.csv",
        histories=f"{RESULTS}/tables/histories.parquet",
    output:
        report(
            directory(f"{REPORTS}/figures/staircase"),
            patterns=["{name}.png"],
            caption="../report/staircase.rst",
            category="Grid extension",
        ),
    params:
        figure="staircase",
    log:
        "logs/report/staircase.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        CONDA_ENV
    script:
        "../scripts/figures.py"


rule report_tables:
    input:
        runs=f"{RESULTS}/tables/runs.csv",
        science=science_results(),
    output:
        report(
            directory(f"{REPORTS}/tables"),
            patterns=["{name}.md"],
            caption="../report/tables.rst",
            category="Tables",
        ),
    log:
        "logs/report/tables.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        CONDA_ENV
    script:
        "../scripts/report_tables.py"


rule paper_vs_ours:
    input:
        runs=f"{RESULTS}/tables/runs.csv",
        science=f"{RESULTS}/tables/science.csv",
        reference=PAPER_REFERENCE,
        datasets=[dataset_dir(family, name) for family, name in DATA],
    output:
        report(
            f"{REPORTS}/paper_vs_ours.md",
            caption="../report/paper_vs_ours.rst",
            category="Paper vs ours",
        ),
    params:
        deviations=lambda w: SETTINGS["report"]["deviations"],  # a function: free text may hold braces
        miss_causes=lambda w: SETTINGS["report"]["miss_causes"],
        profile=lambda w: SETTINGS["profile"],
        science=SCIENCE,
    log:
        "logs/report/paper_vs_ours.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        CONDA_ENV
    script:
        "../scripts/paper_vs_ours.py"
