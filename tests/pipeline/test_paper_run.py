"""The published paper run (reports/paper-run/): its report rebuilds byte for byte from the
records alone, its shard table says what the records hold, the README states their counts, and
cheap committed trainings retrain to their records (exactly on the machine kind that produced
them, within ×3 on another kind)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from kan.data import generate_to_dir
from kan.experiments import runner
from kan.experiments.progress import shard_table
from kan.experiments.sweep import cut_training, expand
from kan.pipeline.cli import PUBLISHED, REFERENCE, main
from kan.records.provenance import machine_kind
from kan.records.publish import RUNS, SCIENCE, SHARDS, is_current
from kan.records.runfiles import read_metrics, run_dir
from kan.reporting.paper_run import rebuild

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / PUBLISHED
OTHER_KIND_FACTOR = 3.0  # ci runs of 15 steps already differ up to 1.6x between CPU kinds; 200 steps amplify it
pytestmark = pytest.mark.skipif(not (RECORDS / RUNS).is_file(), reason=f"no published paper run in {PUBLISHED}")


@pytest.fixture(scope="module")
def trainings(paper_settings):
    return expand(paper_settings)


def _published(folder):
    """The report, tables and figures `make report-paper` writes (the science records' own tables,
    under science/, are records and stay)."""
    return {p.relative_to(folder) for p in folder.rglob("*")
            if p.suffix in (".md", ".png") and p.relative_to(folder).parts[0] != SCIENCE}


def test_the_report_rebuilds_byte_for_byte_from_the_records(tmp_path, monkeypatch):
    """`make report-paper`: the committed report and tables are what the records give (figures:
    the same files; their pixels depend on the installed matplotlib and FreeType)."""
    copy = shutil.copytree(RECORDS, tmp_path / "records")
    for path in _published(copy):
        (copy / path).unlink()
    monkeypatch.chdir(ROOT)  # the report names the reference file by its path, as `make report-paper` gives it
    rebuild(copy, REFERENCE / "paper.yaml")
    assert _published(copy) == _published(RECORDS)
    for path in (p for p in _published(RECORDS) if p.suffix == ".md"):
        assert (copy / path).read_bytes() == (RECORDS / path).read_bytes(), path


def _normalised(table):
    return table.assign(machines=table["machines"].fillna("")).astype({"cpu_hours": "float64"})


def test_every_folder_the_report_names_is_in_the_records():
    """The report points at the science records and tables by folders beside it (not at a
    pipeline run's results/ or reports/, which a clone of the records does not have)."""
    named = set(re.findall(r"`([\w./-]+/)`", (RECORDS / "paper_vs_ours.md").read_text(encoding="utf-8")))
    assert named, "the report names no folder"
    assert not [folder for folder in named if not (RECORDS / folder).is_dir()], "folders missing beside the report"


def test_the_shard_table_says_what_the_records_hold(trainings, paper_settings):
    """Recomputed from the records and this code: a record turns stale when the code computes other
    ci numbers (its fingerprint) or generates other data for its dataset (its data definition)."""
    found = shard_table(trainings, paper_settings["chunk_size"], list(paper_settings["science"]), RECORDS)
    committed = pd.read_csv(RECORDS / SHARDS)
    turned_stale = found.loc[found["stale"] > committed["stale"], "groups"].tolist()
    assert not turned_stale, (f"the published records of {', '.join(turned_stale)} are stale for this code (other "
                              "ci numbers or other data): run those shards again and publish them")
    pd.testing.assert_frame_equal(_normalised(found), _normalised(committed), check_dtype=False)


def test_incomplete_shards_are_what_make_paper_rest_runs(capsys, monkeypatch):
    """`python -m kan incomplete-shards` (what `make paper-rest` passes as SHARD) lists the shards
    the shard table does not mark complete."""
    monkeypatch.chdir(ROOT)
    assert main(["incomplete-shards"]) == 0
    committed = pd.read_csv(RECORDS / SHARDS)
    assert capsys.readouterr().out.strip() == ",".join(committed.loc[~committed["complete"], "shard"])


def test_incomplete_shards_follow_the_shard_count_the_run_used(trainings, paper_settings, tmp_path, capsys,
                                                                 monkeypatch):
    """With ``--shards N`` the shards named are k/N, as ``publish --shards N`` and ``make paper-shard
    SHARD=k/N`` split the run: with xy's runs gone, the one shard that holds xy."""
    copy = shutil.copytree(RECORDS, tmp_path / "records")
    runs = pd.read_parquet(copy / RUNS)
    runs[runs["dataset"] != "xy"].to_parquet(copy / RUNS, index=False)
    monkeypatch.chdir(ROOT)
    named = {}
    for count in (None, 4):
        assert main(["incomplete-shards", str(copy), *(["--shards", str(count)] if count else [])]) == 0
        named[count] = capsys.readouterr().out.strip()
    assert named[None].endswith("/54") and "," not in named[None]
    assert re.fullmatch(r"[1-4]/4", named[4])
    quarters = shard_table(trainings, paper_settings["chunk_size"], list(paper_settings["science"]), copy, 4)
    assert "toy_scaling/xy" in quarters.set_index("shard").loc[named[4], "groups"].split()


def test_forgetting_a_status_no_record_has_changes_nothing(tmp_path, capsys, monkeypatch):
    """`python -m kan forget --status S` on a copy of the records: nothing has status S, so the
    records, report.json and shards.csv stay as committed."""
    copy = shutil.copytree(RECORDS, tmp_path / "records")
    monkeypatch.chdir(ROOT)
    assert main(["forget", str(copy), "--status", "no-such-status"]) == 0
    assert capsys.readouterr().out.startswith("dropped 0 run(s) with status 'no-such-status'")
    for name in (RUNS, SHARDS, "report.json"):
        assert (copy / name).read_bytes() == (RECORDS / name).read_bytes(), name


def test_every_shard_of_the_paper_run_is_published():
    """Every training and science experiment of the paper profile is in the records and current."""
    table = pd.read_csv(RECORDS / SHARDS)
    missing = table[~table["complete"]]
    assert not len(missing), (f"{len(missing)} of {len(table)} shards of the paper run are incomplete "
                              f"({int(table['current'].sum())} of {int(table['trainings'].sum())} trainings current): "
                              "run `make paper-rest` and `make publish-paper`")


def _cheap_first_phases(records, trainings):
    """(record, training) of the smallest current first-phase KAN run (not pruned) per experiment,
    one computed on this machine's kind where there is one (so that the exact check runs)."""
    rows = [r for r in records.to_dict("records") if r["model"] == "kan" and r["variant"] != "pruned"
            and len(json.loads(r["config"])["train"]["grid_schedule"]) == 1 and is_current(r)]
    chosen: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: (r["machine"] != machine_kind(), r["n_params"], r["run_id"])):
        chosen.setdefault(row["experiment"], row)
    by_id = {t.stages[0].run_id: t for t in trainings}
    return [(record, by_id[record["run_id"]]) for record in chosen.values()]


def test_cheap_committed_trainings_retrain_to_their_records(trainings, tmp_path):
    picked = _cheap_first_phases(pd.read_parquet(RECORDS / RUNS), trainings)
    if not picked:
        pytest.skip("no current first-phase KAN run in the records")
    for record, training in picked:
        folder = tmp_path / training.family / training.dataset
        if not folder.exists():
            generate_to_dir(training.family, training.dataset, training.data["spec"], training.data["seed"], folder)
        cut = cut_training(training, 1)
        runner.train_chunk([cut], {(training.family, training.dataset): folder}, tmp_path / "results", {})
        ours = read_metrics(run_dir(tmp_path / "results", cut.experiment, cut.kind, cut.stages[0].run_id))
        for column in ("train_rmse", "test_rmse"):
            if record["machine"] == machine_kind():
                assert ours[column] == record[column], (record["experiment"], record["dataset"], column)
            else:
                assert 1 / OTHER_KIND_FACTOR <= ours[column] / record[column] <= OTHER_KIND_FACTOR, record["run_id"]


def _one(pattern, text, where):
    found = re.search(pattern, text)
    assert found, f"{where} has no sentence matching {pattern!r}: keep its counts in that form"
    return found.groups()


def _words(path):
    return " ".join(path.read_text(encoding="utf-8").split())


def test_the_readme_states_the_counts_of_the_committed_records():
    """The README's paper-run paragraphs ("So far", "At this commit") give the committed report's
    shard, training, CPU-hour and fidelity counts: they are updated with every publish."""
    report, readme = _words(RECORDS / "paper_vs_ours.md"), _words(ROOT / "README.md")
    number = r"(\d+(?:\.\d+)?)"
    shards, total_shards, current, trainings, science, hours = _one(
        rf"\*\*Published records: {number} of {number} shards complete; {number} of {number} trainings and "
        rf"{number} of \d+ science experiments current \([^)]*\); {number} CPU hours", report, "the report")
    assert _one(rf"At this commit {number} of the {number} shards are complete, {number} of {number} trainings and "
                rf"(?:all )?{number} science experiments are in \({number} CPU hours", readme, "the README") == (
        shards, total_shards, current, trainings, science, hours), "update the README's \"At this commit\" counts"
    per_experiment = {name: _one(rf"\| {name} \| [^|]+ \| [^|]+ \| [^|]+ \| {number} \|", report, "the report")[0]
                      for name in ("feynman", "special", "toy_scaling", "science")}
    stated = _one(rf"\({number} CPU hours: Feynman {number}, special functions {number}, science {number}, toy "
                  rf"functions {number};", readme, "the README")
    assert stated == (hours, per_experiment["feynman"], per_experiment["special"], per_experiment["science"],
                      per_experiment["toy_scaling"]), "update the README's CPU hours per experiment"
    left = re.search(rf"The rest is estimated at {number} CPU hours", report)
    assert (re.search(rf"report estimates the rest at {number} CPU hours", readme) or [None, None])[1] == (
        left[1] if left else None), "update the README's estimate of the CPU hours left"
    compared, within, share, strict, outside, better = _one(
        rf"\*\*Fidelity: {number} numbers compared: {number} \((\d+)%\) within the block's tolerance, {number} within "
        rf"×3 \(ratios\) or ±2 pts \(accuracies\); of the {number} outside the tolerance, {number} are ours better",
        report, "the report")
    claims = _one(r"\| \*\*all\*\* \|(?: [^|]+ \|){5} (\d+ of \d+) \|", report, "the report")[0].split(" of ")
    stated = _one(rf"\*\*(?:So far|Complete)\*\* \({number} of {number} shards\): of the "
                  rf"{number} paper numbers compared, {number} "
                  rf"\((\d+) %\) lie within the paper block's tolerance and {number} within ×3 \(ratios\) or ±2 points "
                  rf"\(accuracies\); {number} of the {number} checked claims hold\. Of the {number} numbers outside "
                  rf"the tolerance: - {number} are ours being \*better\*", readme, "the README")
    assert stated == (shards, total_shards, compared, within, share, strict, *claims, outside, better), (
        "update the README's \"So far\" counts (\"Complete\" once every shard is)")
    if shards == total_shards:  # the README leads with the complete run
        assert _one(rf"\*\*The paper at its own scale\*\* \({number} shards: {number} trainings and the {number} science "
                    rf"experiments, {number} CPU hours[^)]*\): {number} of the {number} paper numbers compared \((\d+) %\) "
                    rf"lie within the paper's tolerance, {number} within ×3 or ±2 points\. Of the {number} others, "
                    rf"{number} are ours being \*more accurate\*", readme, "the README") == (
            total_shards, trainings, science, hours, within, compared, share, strict, outside, better), (
            "update the README's lead paragraph")
    table = pd.read_csv(RECORDS / SHARDS)
    started = int((~table["complete"] & (table["current"] > 0)).sum())
    partly = re.search(r"(\d+) more shards? ha(?:ve|s) some trainings in", readme)
    assert (partly[1] if partly else "0") == str(started), "update the README's count of shards with some trainings in"
    feynman = _one(r"\| feynman \| (\d+) of \d+ \|", report, "the report")[0]
    share = float(_one(r"share_kan_within_tolerance_of_mlp = ([\d.]+)", report, "the report")[0])
    assert _one(r"best MLP on (\d+) of the (\d+) complete equations", readme, "the README") == (
        str(round(share * int(feynman))), feynman), "update the README's count of equations with KANs near the MLPs"
