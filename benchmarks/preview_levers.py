"""What each cut of the paper profile costs in accuracy and saves in CPU time, read from the
published paper run without training (:func:`kan.pipeline.preview.preview`).

Each row applies one cut to ``workflow/config/paper.yaml`` (the last row: all of them, which is
``workflow/config/paper-night.yaml``), keeps the trainings it leaves (the same run ids as the
paper profile's) and reports what their published records give: trainings, recorded CPU hours
(trainings and the six science experiments, on the machine kinds that recorded them), numbers
within the paper's tolerance, outside it with ours better or not (a shortfall, or a minimal KAN
of another shape than the paper's), shapes the same as the paper's and claims that hold.

Run: ``.venv/bin/python benchmarks/preview_levers.py`` from the repository root (a few seconds per row).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from kan.pipeline.cli import PAPER_CONFIG, PUBLISHED, REFERENCE, SCHEMA
from kan.pipeline.config import load_config, load_yaml
from kan.pipeline.preview import SUMMARY_COLUMNS, preview, preview_headline, summary_cells

ROOT = Path(__file__).resolve().parents[1]
NIGHT_CONFIG = ROOT / "workflow" / "config" / "paper-night.yaml"
TABLES = ("special", "feynman")
Cut = Callable[[dict[str, Any]], None]


def kan_depths(config: dict[str, Any]) -> None:
    for name in TABLES:
        config["experiments"][name]["kan"]["depths"] = [2, 3]


def mlp_depths(config: dict[str, Any]) -> None:
    for name in TABLES:
        config["experiments"][name]["mlp"]["depths"] = [2, 3]


def lambda_1e_3(config: dict[str, Any]) -> None:
    for name in TABLES:
        config["experiments"][name]["kan"]["prune"]["lambdas"] = [0.001]


def mlp_seed_0(config: dict[str, Any]) -> None:
    for name in TABLES:
        config["experiments"][name]["mlp"]["seeds"] = [0]


def one_seed(config: dict[str, Any]) -> None:
    for name in TABLES:
        config["experiments"][name]["seeds"] = [0]


def toy_mlps(config: dict[str, Any]) -> None:
    config["experiments"]["toy_scaling"]["mlp"].update(widths=[5, 10, 20, 50], depths=[2, 3, 4])


CUTS: dict[str, Cut | None] = {
    "none (the paper profile)": None,
    "KAN depths 2-3 (of 2-6)": kan_depths,
    "MLP depths 2-3 (of 2-6)": mlp_depths,
    "pruning at λ = 1e-3 only (of 1e-2, 1e-3)": lambda_1e_3,
    "MLPs on seed 0 only (of 3 seeds)": mlp_seed_0,
    "toy MLPs of width 5-50, depth 2-4 (of 5-100, 2-5)": toy_mlps,
    "every model on seed 0 only (not taken)": one_seed,
}


def settings_with(cut: Cut | None) -> dict[str, Any]:
    """The paper profile with ``cut`` applied, validated."""
    raw = load_yaml(ROOT / PAPER_CONFIG)
    if cut is not None:
        cut(raw)
    return load_config(raw, ROOT / SCHEMA)


def row(name: str, settings: dict[str, Any]) -> str:
    found = preview(settings, ROOT / PUBLISHED)
    return "| " + " | ".join([name, *summary_cells(found, preview_headline(found, ROOT / REFERENCE / "paper.yaml"))]) + " |"


def main() -> None:
    print("| cut | " + " | ".join(SUMMARY_COLUMNS) + " |")
    print("|---" * (len(SUMMARY_COLUMNS) + 1) + "|")
    for name, cut in CUTS.items():
        print(row(name, settings_with(cut)), flush=True)
    print(row("all five taken: paper-night", load_config(NIGHT_CONFIG, ROOT / SCHEMA)))


if __name__ == "__main__":
    main()
