# KAN paper reproduction. `make reproduce` runs the default profile, `make test` the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
PORT ?= 5000
# working directory of the paper profile (its datasets, results, logs)
PAPER_DIR ?= paper-run
# working directory of the paper-night profile
NIGHT_DIR ?= paper-night-run
# published records whose current trainings a shard does not train again (empty: retrain them)
PUBLISHED ?= $(CURDIR)/reports/paper-run

.PHONY: help install reproduce resume paper paper-night preview-night paper-shard paper-rest publish-paper report-paper ui-paper test bench bench-sweep bench-fleet lint dry-run report ui ci-expected clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'
	touch $@

install: $(BIN)/snakemake  ## create .venv and install the package with its dev extras

reproduce: install  ## the default profile: data, training, tables, figures, MLflow (CORES=all)
	$(BIN)/snakemake --cores $(CORES)

resume: install  ## after a kill: remove the stale lock (only if no snakemake run is active here), then continue the default profile
	$(BIN)/python -m kan unlock
	$(BIN)/snakemake --cores $(CORES) --rerun-incomplete

paper: install  ## the paper's sweeps on this machine, in PAPER_DIR (default paper-run/; days of CPU time; see profiles/slurm)
	$(BIN)/snakemake -s $(CURDIR)/Snakefile --directory $(PAPER_DIR) --profile profiles/paper --cores $(CORES)

paper-night: install  ## the paper-night profile (a cut of the paper's sweeps, one night on 2 cores) in NIGHT_DIR (default paper-night-run/)
	$(BIN)/snakemake -s $(CURDIR)/Snakefile --directory $(NIGHT_DIR) --profile profiles/paper-night --cores $(CORES)

preview-night: install  ## what the paper-night profile gives and costs, read from the published paper run, without training
	$(BIN)/python -m kan preview --config workflow/config/paper-night.yaml --report $(NIGHT_DIR)/preview_paper_vs_ours.md

paper-shard: install  ## one shard of the paper profile, in PAPER_DIR (default paper-run/), SHARD=k/54: one dataset or science experiment (resumable)
	@test -n "$(SHARD)" || { echo "usage: make paper-shard SHARD=k/N (e.g. SHARD=3/54; reports/paper-run/shards.csv names each)"; exit 2; }
	$(BIN)/snakemake -s $(CURDIR)/Snakefile --directory $(PAPER_DIR) shard --profile profiles/paper --cores $(CORES) \
		--rerun-incomplete --config shard=$(SHARD) $(if $(PUBLISHED),published=$(PUBLISHED))

paper-rest: install  ## every shard the published records (PUBLISHED) do not complete, in one resumable run over CORES
	@shards=$$($(BIN)/python -m kan incomplete-shards $(PUBLISHED)) && \
	if [ -z "$$shards" ]; then echo "every shard of the paper profile is complete in $(or $(PUBLISHED),reports/paper-run)"; \
	else $(MAKE) --no-print-directory paper-shard SHARD="$$shards"; fi

publish-paper: install  ## merge the paper run's finished results (PAPER_DIR/results) into reports/paper-run/, then rebuild its report
	$(BIN)/python -m kan publish $(PAPER_DIR)/results
	$(BIN)/python -m kan report

report-paper: install  ## rebuild reports/paper-run/ (report, tables, figures) from its committed records, without training
	$(BIN)/python -m kan report

ui-paper: install  ## MLflow UI on the published paper run (loads reports/paper-run/ into results/mlflow-paper-run.db)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m kan ui-records --port $(PORT)

test: install  ## the whole test suite, as CI runs it (exit code 5, no tests collected, counts as success)
	$(BIN)/python -m pytest --durations=15 || [ $$? -eq 5 ]

bench: install  ## layer and whole-fit benchmark: ours vs equal-parameter MLP vs pykan 0.2.8 (BENCH_ARGS=--quick)
	cd benchmarks && ../$(BIN)/python bench_core.py $(BENCH_ARGS)

bench-sweep: install  ## mini-sweep sequential vs batched fit_many, and the paper-profile time estimate
	cd benchmarks && ../$(BIN)/python bench_sweep.py $(BENCH_ARGS)

bench-fleet: install  ## CPU cost per model of fit_many (batch="auto" and "always") against separate fits
	cd benchmarks && ../$(BIN)/python bench_fleet.py $(BENCH_ARGS)

lint: install  ## snakemake --lint
	$(BIN)/snakemake --lint

dry-run: install  ## what the default profile would run
	$(BIN)/snakemake -n

report: install  ## HTML report of figures and tables: reports/report.html
	$(BIN)/snakemake --report reports/report.html

ui: install  ## MLflow UI on http://127.0.0.1:PORT (default 5000) for results/mlflow.db (or MLFLOW_TRACKING_URI)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m kan ui --port $(PORT)

ci-expected: install  ## rerun the ci profile in a scratch dir and rewrite this machine kind's rows of reports/reference/ci_expected*.csv
	tmp=$$(mktemp -d) && \
	$(BIN)/snakemake -s $(CURDIR)/Snakefile --directory $$tmp --profile profiles/ci results/tables/runs.csv results/tables/science.csv && \
	$(BIN)/python -m kan expected $$tmp/results/tables/runs.csv && rm -rf $$tmp

clean:  ## delete generated data, results, logs and reports (keeps reports/reference)
	rm -rf results datasets/generated logs .snakemake reports/figures reports/tables reports/paper_vs_ours.md reports/report.html
