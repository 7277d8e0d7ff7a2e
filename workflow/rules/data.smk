"""Datasets: one folder per task, generated once and shared by every experiment: the training
sweep's and those the science experiments read (knot table, Anderson localization states)."""


rule generate_dataset:
    input:
        unpack(external_data),
    output:
        directory(dataset_dir("{family}", "{name}")),
    params:
        spec=lambda w: DATA[(w.family, w.name)]["spec"],
        seed=lambda w: DATA[(w.family, w.name)]["seed"],
        generator=lambda w: code_digest(w.family),  # a changed generator regenerates its family's datasets
    log:
        "logs/data/{family}/{name}.log",
    threads: 1
    priority: PREREQUISITE_PRIORITY
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CONDA_ENV
    script:
        "../scripts/generate_dataset.py"


rule download_knots:
    """DeepMind's full knot-invariant table (science.knots.download), fetched once; offline, the
    folder records why and the knot dataset falls back to a local table (named in the report).
    Delete the folder to try the download again."""
    output:
        directory(KNOT_DOWNLOAD_DIR),
    params:
        url=lambda w: knot_source_options()["download_url"],
        sha256=lambda w: knot_source_options()["download_sha256"],
    log:
        "logs/data/download_knots.log",
    threads: 1
    priority: PREREQUISITE_PRIORITY
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        CONDA_ENV
    script:
        "../scripts/download_knots.py"
