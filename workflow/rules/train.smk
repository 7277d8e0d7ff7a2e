"""Training: each job trains a chunk of same-dataset trainings and writes per-run files
under results/runs/; its manifest lists them. Finished runs are skipped on reruns."""


rule train_chunk:
    input:
        unpack(chunk_datasets),
    output:
        f"{RESULTS}/chunks/{{experiment}}/{{dataset}}/{{index}}.json",
    params:
        trainings=lambda w: [t.to_dict() for t in chunk_of(w)],
        datasets=chunk_datasets,
        results=lambda w, output: str(Path(output[0]).parents[3]),  # results/chunks/<exp>/<ds>/<i>.json
        profile=lambda w: SETTINGS["profile"],
        published=lambda w: SETTINGS["published"],  # records whose current trainings are not trained again
        fingerprint=CODE_FINGERPRINT,  # a change of the code's numbers reruns the chunk
        # True, or a new value each time a run the manifest lists is gone (a change, so a rerun); a
        # function of the wildcards only: Snakemake does not record params that take the output
        runs_present=lambda w: manifest_state(chunk_manifest(f"{w.experiment}/{w.dataset}/{w.index}")),
    log:
        "logs/train/{experiment}/{dataset}/{index}.log",
    threads: 1
    priority: lambda w: TRAIN_PRIORITY[f"{w.experiment}/{w.dataset}"]
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        CONDA_ENV
    script:
        "../scripts/train_chunk.py"
