"""The paper's numbers in reports/reference/paper.yaml: structure, names, and cells against the notes."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from kan.data import feynman, special, synthetic
from kan.reporting.reference import BLOCKS, load_reference, validate_reference

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reports" / "reference" / "paper.yaml"
PAPER_NOTES = ROOT.parent / "shared" / "paper" / "README.md"  # the project's notes, outside the repository


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE)


def _rows(reference, block):
    return {row["dataset"]: row for row in reference[block]["rows"]}


def test_every_block_is_present_and_sourced(reference):
    assert set(BLOCKS) <= set(reference)
    for name in BLOCKS[1:]:
        assert "2404.19756" in reference[name]["source"]


def test_row_names_are_the_dataset_names(reference):
    assert list(_rows(reference, "special_functions")) == list(special.TASKS)
    assert list(_rows(reference, "feynman")) == list(feynman.TASKS)
    assert set(_rows(reference, "toy_scaling")) <= set(synthetic.TASKS)
    assert {row["dataset"] for row in reference["grid_extension"]["rows"]} <= set(synthetic.TASKS)


def test_some_cells(reference):
    jv = _rows(reference, "special_functions")["jv"]
    assert (jv["min_kan_shape"], jv["min_kan_rmse"], jv["mlp_rmse"]) == ([2, 2, 1], 4.93e-3, 5.52e-3)
    eq = _rows(reference, "feynman")
    assert eq["I.30.3"]["human_shape"] == [2, 3, 2, 2, 1, 1] and eq["I.30.3"]["unpruned_rmse"] == 1.11e-2
    assert eq["I.26.2"]["uncertain"] == ["human_rmse", "mlp_rmse"]
    assert set(eq["II.11.27"]["uncertain"]) == {"human_shape", "min_pruned_shape", "best_pruned_shape", "mlp_rmse"}
    assert "uncertain" not in eq["I.6.20"]
    assert [r["test_accuracy"] for r in reference["knot"]["table"]][:2] == [0.780, 0.816]
    step_4a = [r for r in reference["anderson"]["mobility_edges"] if "4A" in r["origin"]][0]
    assert step_4a["accuracy"] == 0.966 and step_4a["uncertain"] == ["accuracy"]
    assert reference["toy_scaling"]["theory_exponent"] == 4.0


def _notes_table(header_start):
    """Rows of the Markdown table in the paper notes whose header starts with ``header_start``."""
    lines = PAPER_NOTES.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _cell(text):
    """A notes cell as (value, uncertain): shapes as lists, numbers as floats."""
    flagged = "⚑" in text
    text = text.replace("⚑", "").strip()
    return (json.loads(text) if text.startswith("[") else float(text)), flagged


def _check_row(row, cells, columns):
    for column, text in zip(columns, cells):
        value, flagged = _cell(text)
        assert row[column] == value, (row["dataset"], column)
        assert (column in row.get("uncertain", [])) == flagged, (row["dataset"], column)


@pytest.mark.skipif(not PAPER_NOTES.is_file(), reason="paper notes not next to this checkout")
def test_every_table_cell_matches_the_notes(reference):
    special_columns = ["min_kan_shape", "min_kan_rmse", "best_kan_shape", "best_kan_rmse", "mlp_rmse"]
    notes = _notes_table("| function | scipy |")
    assert len(notes) == 15
    for row, cells in zip(reference["special_functions"]["rows"], notes):
        _check_row(row, cells[2:], special_columns)
    feynman_columns = ["human_shape", "min_pruned_shape", "best_pruned_shape", "human_rmse", "best_pruned_rmse",
                       "unpruned_rmse", "mlp_rmse"]
    notes = _notes_table("| id | dimensionless formula")
    assert len(notes) == 27
    for row, cells in zip(reference["feynman"]["rows"], notes):
        assert cells[0].split(" ")[0] == row["dataset"]
        _check_row(row, cells[2:], feynman_columns)


def test_validation_names_every_problem():
    broken = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    broken = copy.deepcopy(broken)
    del broken["speed"]
    broken["pde"]["source"] = ""
    broken["feynman"]["rows"][0]["mlp_rmse"] = "1.45e-4"  # a string, as YAML reads "1.45e-4"
    broken["feynman"]["rows"][1]["uncertain"] = ["human_rsme"]
    broken["special_functions"]["rows"][0]["min_kan_shape"] = [2, 0, 1]
    broken["knot"]["table"][0]["test_accuracy"] = 78.0
    problems = "\n".join(validate_reference(broken))
    for expected in ("missing block 'speed'", "pde: needs a 'source'", "rows[0].mlp_rmse: expected a positive number",
                     "names no cell of this mapping: ['human_rsme']", "min_kan_shape: expected a shape",
                     "test_accuracy: expected a fraction"):
        assert expected in problems


def test_load_reference_raises_on_a_broken_file(tmp_path):
    path = tmp_path / "paper.yaml"
    path.write_text("paper: {title: x}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing block 'feynman'"):
        load_reference(path)
