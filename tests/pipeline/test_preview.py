"""``python -m kan preview``: a config judged on the published paper run without training. The
paper profile's preview is the published report itself; the paper-night profile is a subset of
the paper profile's trainings with the same science, so its preview is exact; a config that
asks for anything the records lack is refused by name."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kan.experiments.sweep import expand
from kan.pipeline.cli import PUBLISHED, REFERENCE, main
from kan.pipeline.preview import NotPublished, preview, preview_headline, summary_cells, write_preview_report
from kan.records.publish import RUNS, SCIENCE
from kan.records.science_outputs import RUN_RECORD

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / PUBLISHED
NIGHT_CONFIG = ROOT / "workflow" / "config" / "paper-night.yaml"
pytestmark = pytest.mark.skipif(not (RECORDS / RUNS).is_file(), reason=f"no published paper run in {PUBLISHED}")


@pytest.fixture(scope="module")
def night(load):
    return load(NIGHT_CONFIG)


def test_the_paper_profiles_preview_is_the_published_report(paper_settings, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the report names the reference by the path it is given, relative as `kan report` does
    records = tmp_path / "records"  # the report written beside the records, as the published one
    shutil.copytree(RECORDS, records, ignore=shutil.ignore_patterns("figures", "tables", "paper_vs_ours.md"))
    found = preview(paper_settings, records)
    written = write_preview_report(paper_settings, found, records, REFERENCE / "paper.yaml", records / "pvo.md")
    published = (RECORDS / "paper_vs_ours.md").read_text(encoding="utf-8").splitlines()
    ours = written.read_text(encoding="utf-8").splitlines()
    start = published.index(ours[2])  # the published report adds its shard status after the title
    assert ours[2].startswith("The numbers of") and published[start:] == ours[2:]
    assert found.trainings == _trainings_per_experiment(paper_settings)
    assert len(found.runs) == len(pd.read_parquet(RECORDS / RUNS)) and len(found.science) == len(paper_settings["science"])


def _trainings_per_experiment(settings) -> dict[str, int]:
    counts: dict[str, int] = {}
    for training in expand(settings):
        counts[training.experiment] = counts.get(training.experiment, 0) + 1
    return counts


def test_paper_night_is_a_cut_of_the_paper_profile(paper_settings, night):
    paper_ids = {s.run_id for t in expand(paper_settings) for s in t.stages}
    night_trainings = expand(night)
    assert {s.run_id for t in night_trainings for s in t.stages} < paper_ids
    assert night["science"] == paper_settings["science"] and night["dtype"] == paper_settings["dtype"]
    assert set(paper_settings["report"]["deviations"]) < set(night["report"]["deviations"])
    assert paper_settings["report"]["miss_causes"].keys() < night["report"]["miss_causes"].keys()
    assert {t.seed for t in night_trainings if t.kind == "mlp" and t.experiment != "toy_scaling"} == {0}


def test_paper_nights_preview_counts_and_prices_its_own_trainings(night, paper_settings, tmp_path):
    found = preview(night, RECORDS)
    assert found.trainings == _trainings_per_experiment(night)
    whole = preview(paper_settings, RECORDS)
    for science in (k for k in found.cpu_hours if k.startswith("science: ")):
        assert found.cpu_hours[science] == whole.cpu_hours[science]
    assert found.total_cpu_hours < whole.total_cpu_hours / 4
    top = preview_headline(found, ROOT / REFERENCE / "paper.yaml")
    assert top.fidelity.compared >= 180 and top.claims[1] >= 36  # every row but one minimal shape, as the README says
    report = write_preview_report(night, found, RECORDS, ROOT / REFERENCE / "paper.yaml", tmp_path / "night.md")
    assert f"Ours: `{RECORDS.as_posix()}/science/pde/`, in the published records" in report.read_text(encoding="utf-8")


def test_a_config_beyond_the_records_is_refused_by_name(paper_settings, load, tmp_path, capsys):
    more_seeds = copy.deepcopy(paper_settings)
    more_seeds["experiments"]["feynman"]["seeds"] = [0, 1, 2, 3]
    with pytest.raises(NotPublished, match=r"feynman/I\.\S+ human kan hidden paper seed 3"):
        preview(more_seeds, RECORDS)
    other_science = copy.deepcopy(paper_settings)
    other_science["science"]["continual"]["steps_per_phase"] = 19
    with pytest.raises(NotPublished, match="science experiment 'continual': the published one ran with other settings"):
        preview(other_science, RECORDS)
    config = tmp_path / "more-seeds.yaml"
    raw = yaml.safe_load(NIGHT_CONFIG.read_text(encoding="utf-8"))
    raw["experiments"]["special"]["seeds"] = [5]
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert main(["preview", str(RECORDS), "--config", str(config)]) == 2
    assert "trainings have no current record" in capsys.readouterr().err


def test_a_stale_science_record_is_refused(paper_settings, tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    for name in ("runs.parquet", "histories.parquet", "report.json", "shards.csv"):
        (records / name).write_bytes((RECORDS / name).read_bytes())
    folder = records / SCIENCE / "continual"
    folder.mkdir(parents=True)
    record = json.loads((RECORDS / SCIENCE / "continual" / RUN_RECORD).read_text(encoding="utf-8"))
    (folder / RUN_RECORD).write_text(json.dumps({**record, "code_fingerprint": "0" * 16}), encoding="utf-8")
    settings = {**paper_settings, "science": {"continual": paper_settings["science"]["continual"]}}
    with pytest.raises(NotPublished, match="science experiment 'continual': its record is stale"):
        preview(settings, records)


def test_the_readme_states_paper_nights_preview(night):
    found = preview(night, RECORDS)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(row for row in readme.splitlines() if row.startswith("| all five taken: paper-night |"))
    expected = summary_cells(found, preview_headline(found, ROOT / REFERENCE / "paper.yaml"))
    assert [cell.strip() for cell in line.strip("|").split("|")[1:]] == expected, "update the README's paper-night row"
    assert f"{sum(found.trainings.values())} of its 3743 trainings" in readme
