"""Fidelity bands and likely causes of misses (kan.reporting.fidelity), and the report's
promise that every paper number is compared or listed with a reason."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from kan.reporting.compare import COMPARED_BLOCKS, REPORTED, cause_keys, headline, paper_vs_ours
from kan.reporting.fidelity import (
    CAUSE_BETTER, CAUSE_BUDGET, CAUSE_OTHER_SHAPE, CAUSE_UNCERTAIN, CAUSE_UNEXPLAINED, Causes, Tally, ratio_text,
    claim_key, strict_tolerance, within_band,
)
from kan.reporting.reference import NOT_COMPARED, OURS, load_reference, validate_reference
from kan.reporting.science import SCIENCE_BLOCKS


@dataclass(frozen=True)
class _Cell:
    quantity: str
    paper: float
    ours: float
    uncertain: bool = False
    within_tolerance: bool = False
    within_strict: bool = False
    sided: bool = True


def test_bands_by_ratio_and_by_points():
    assert within_band(3e-4, 1e-4, False, 3.0) and not within_band(3.1e-4, 1e-4, False, 3.0)
    assert within_band(1e-4, 3e-4, False, 3.0) and not within_band(1e-4, 3.1e-4, False, 3.0)
    assert within_band(0.80, 0.82, True, 0.02) and not within_band(0.79, 0.82, True, 0.02)
    assert strict_tolerance(False, 10.0) == 3.0 and strict_tolerance(False, 1.5) == 1.5  # never looser
    assert strict_tolerance(True, 0.05) == 0.02 and strict_tolerance(True, 0.01) == 0.01
    # a difference of exactly the tolerance is inside on both sides, whatever the float rounding
    assert within_band(0.766, 0.816, True, 0.05) and within_band(0.866, 0.816, True, 0.05)


def test_a_ratio_at_a_band_edge_is_printed_on_its_verdicts_side():
    assert ratio_text(0.09996, 10.0, within=False) == "0.09996"  # not "0.1" beside "outside ×10"
    assert ratio_text(10.004, 10.0, within=False) == "10.004"
    assert ratio_text(0.0172, 10.0, within=False) == "0.0172"  # 3 digits where they agree


def test_causes_curated_first_then_flag_direction_and_budget():
    worse = _Cell("human_rmse", paper=1e-4, ours=1e-2)
    causes = Causes({"feynman/II.38.3/human_rmse": "range"}, reduced_budget=True)
    assert causes.explain(worse, "feynman/II.38.3/human_rmse") == "range"
    assert causes.explain(_Cell("human_rmse", 1e-4, 1e-2, uncertain=True), "feynman/x/human_rmse") == CAUSE_UNCERTAIN
    assert causes.explain(_Cell("mlp_rmse", 1e-2, 1e-4), "k") == CAUSE_BETTER  # lower error than the paper
    assert causes.explain(_Cell("KAN: test_accuracy", 0.8, 0.9), "k") == CAUSE_BETTER  # higher accuracy
    assert causes.explain(_Cell("kan_exponent", 4.0, 0.3), "k") == CAUSE_BUDGET
    assert Causes({}, reduced_budget=False).explain(worse, "k") == CAUSE_UNEXPLAINED
    assert Causes.of_profile({}, "paper") == Causes({}, reduced_budget=False)  # only the paper profile has its budget
    assert Causes.of_profile({}, "default") == Causes.of_profile({}, "ci") == Causes({}, reduced_budget=True)
    assert causes.explain(_Cell("best_grid for [2,5,1]", 50.0, 20.0), "k") == CAUSE_BUDGET  # no better side
    other_shape = _Cell("min_kan_rmse", 1e-2, 1e-4, sided=False)  # RMSEs of two different minimal shapes
    assert causes.explain(other_shape, "k") == CAUSE_OTHER_SHAPE and Tally.of([other_shape]).outside_better == 0


def test_claim_causes_curated_then_budget(reference_path):
    key = claim_key("toy_scaling", "exp_sin_4d.mlp_exponent")
    assert key == "toy_scaling/claim/exp_sin_4d.mlp_exponent" and key in cause_keys(load_reference(reference_path))
    assert claim_key("knot", "unsupervised.cusp_volume_lambda_mu_i") in cause_keys(load_reference(reference_path))
    assert Causes({key: "data size"}, reduced_budget=True).explain_claim(key) == "data size"
    assert Causes({}, reduced_budget=True).explain_claim(key) == CAUSE_BUDGET
    assert Causes({}, reduced_budget=False).explain_claim(key) == CAUSE_UNEXPLAINED


def test_tally_adds_and_counts():
    cells = [_Cell("a_rmse", 1, 1, within_tolerance=True, within_strict=True), _Cell("b_rmse", 1, 5, within_tolerance=True)]
    total = Tally.of(cells) + Tally.of(cells[:1])
    assert (total.compared, total.within_tolerance, total.within_strict, total.outside_better) == (3, 3, 2, 0)
    assert total.text().startswith("3 numbers compared: 3 (100%) within")


def test_tally_counts_misses_on_the_better_side_only():
    misses = [_Cell("c_rmse", 1e-2, 1e-4), _Cell("KAN: test_accuracy", 0.8, 0.9), _Cell("kan_exponent", 4.0, 0.3),
              _Cell("mlp_rmse", 1e-4, 1e-2), _Cell("best_grid for [2,5,1]", 50.0, 20.0)]
    inside_but_better = _Cell("d_rmse", 1e-2, 5e-3, within_tolerance=True)
    tally = Tally.of([*misses, inside_but_better])
    assert (tally.compared, tally.within_tolerance, tally.outside_better) == (6, 1, 2)
    assert tally.text().endswith("of the 5 outside the tolerance, 2 are ours better than the paper")


def _science_cells_without_reason(node, key=""):
    """Mappings holding an accuracy with neither an ``ours`` entry nor a ``not_compared`` reason."""
    if isinstance(node, list):
        return [c for item in node for c in _science_cells_without_reason(item, key)]
    if not isinstance(node, dict):
        return []
    own = [key] if "accuracy" in node and OURS not in node and NOT_COMPARED not in node else []
    return own + [c for k, v in node.items() if k not in (OURS, NOT_COMPARED) for c in _science_cells_without_reason(v, k)]


def test_every_paper_number_is_compared_or_has_a_reason(reference_path):
    reference = load_reference(reference_path)
    for name in SCIENCE_BLOCKS:
        assert _science_cells_without_reason(reference[name]) == [], name
    uncovered = [name for name in reference if name != "paper" and name not in COMPARED_BLOCKS
                 and name not in SCIENCE_BLOCKS and NOT_COMPARED not in reference[name]]
    assert uncovered == []


def test_report_counts_misses_with_causes_and_lists_uncompared_cells(make_runs, reference_path, tmp_path):
    runs = make_runs(
        {"experiment": "feynman", "dataset": "II.38.3", "variant": "human", "shape": "[2,1,1]", "test_rmse": 0.17},
        {"experiment": "feynman", "dataset": "II.38.3", "model": "mlp", "variant": "mlp", "shape": "[2,20,1]",
         "test_rmse": 5.0e-4},
    )
    causes = Causes({"feynman/II.38.3/human_rmse": "protocol: a spans 0"}, reduced_budget=True)
    text = paper_vs_ours(runs, reference_path, [], tmp_path / "pvo.md", causes=causes).read_text(encoding="utf-8")
    assert "**Fidelity: 2 numbers compared: 1 (50%) within the block's tolerance, 1 within ×3" in text
    assert "| Feynman equations | 2 | 1 | 1 | 0 | — |" in text  # the miss is ours worse; no shape is found
    assert "- II.38.3 human_shape: a setting, not a result" in text  # set to the paper's, so never a match
    assert "human_rmse: ours 1.70e-01 is 1.16e+03× the paper's 1.47e-04, beyond the tolerance ×10. " \
           "Likely cause: protocol: a spans 0." in text
    assert "- II.38.3 best_pruned_rmse: no run of ours qualifies" in text  # no pruned run at all
    assert "No runs for 26 of 27 paper rows" in text


def test_headline_gives_the_reports_top_line_without_writing_it(make_runs, reference_path, tmp_path):
    runs = make_runs(
        {"experiment": "feynman", "dataset": "II.38.3", "variant": "human", "shape": "[2,1,1]", "test_rmse": 0.17},
        {"experiment": "feynman", "dataset": "II.38.3", "variant": "pruned", "lamb": 1e-2, "shape": "[2,1,1]",
         "test_rmse": 1e-4},
        {"experiment": "feynman", "dataset": "II.38.3", "model": "mlp", "variant": "mlp", "shape": "[2,20,1]",
         "test_rmse": 5.0e-4},
    )
    top = headline(runs, reference_path)
    text = paper_vs_ours(runs, reference_path, [], tmp_path / "pvo.md").read_text(encoding="utf-8")
    assert f"**Fidelity: {top.fidelity.text()}.**" in text
    assert top.fidelity.compared == 3 and top.same_shapes == (1, 2)  # the paper's minimal shape, not its best
    assert f"| **all** | 3 | {top.fidelity.within_tolerance} |" in text


def test_a_smaller_rmse_of_a_larger_minimal_shape_is_not_ours_better(make_runs, reference_path, tmp_path):
    """ellipj: the paper's minimal KAN is [2,2,1] at 7.29e-3; a [2,3,1] at 1e-4 is another model."""
    pruned = {"experiment": "special", "dataset": "ellipj", "variant": "pruned", "lamb": 1e-2}
    for shape, expected in (("[2,3,1]", "different models: our minimal shape differs"),
                            ("[2,2,1]", "ours better than the paper")):
        runs = make_runs({**pruned, "shape": shape, "test_rmse": 1e-4})
        text = paper_vs_ours(runs, reference_path, [], tmp_path / "pvo.md").read_text(encoding="utf-8")
        statement = next(line for line in text.splitlines() if line.startswith("- ellipj, min_kan_rmse"))
        assert f"Likely cause: {expected}" in statement, statement


def test_a_zero_rmse_and_held_back_datasets_are_reported(make_runs, reference_path, tmp_path):
    runs = make_runs({"experiment": "feynman", "dataset": "I.6.20", "variant": "unpruned", "test_rmse": 0.0})
    text = paper_vs_ours(runs, reference_path, [], tmp_path / "pvo.md",
                         pending={"jv": "4 of 75 trainings in"}).read_text(encoding="utf-8")
    assert "- I.6.20, unpruned_rmse: ours 0.00e+00 is 0× the paper's 4.60e-05" in text
    assert "Not compared yet, their trainings not all in: jv (4 of 75 trainings in)." in text
    assert "No runs for 14 of 15 paper rows: ellipj, ellipkinc, ellipeinc, yv," in text  # jv is not among them


def test_reported_suffixes_cover_every_row_cell_of_the_tables(reference_path):
    reference = load_reference(reference_path)
    settings = {"dataset", "name", "scipy", "formula", "variables", "note", "d", "shape", "uncertain", "approximate",
                NOT_COMPARED}
    for name in COMPARED_BLOCKS:
        for row in reference[name]["rows"]:
            assert all(c.endswith(REPORTED) or c in settings for c in row), (name, row["dataset"])


@pytest.mark.parametrize("bad", [{"not_compared": {"nonexistent_rmse": "why"}}, {"not_compared": 3}])
def test_not_compared_is_checked(reference_path, tmp_path, bad):
    reference = load_reference(reference_path)
    reference["feynman"]["rows"][0].update(bad)
    assert any("not_compared" in problem for problem in validate_reference(reference))


@pytest.mark.parametrize("profile", ["default", "paper", "ci"])
def test_shipped_miss_causes_name_numbers_of_the_paper(load, reference_path, profile):
    settings = load(Path(__file__).resolve().parents[2] / "workflow" / "config" / f"{profile}.yaml")
    known = cause_keys(load_reference(reference_path))
    assert set(settings["report"]["miss_causes"]) <= known
    assert {"feynman/II.38.3/human_rmse", "grid_extension/exp_sin_sq/best_grid for [2,5,1]",
            "knot/KAN: test_accuracy", "anderson/GAAM KAN auto: accuracy"} <= known


def test_a_mistyped_miss_cause_is_an_error(make_runs, reference_path, tmp_path):
    runs = make_runs({"experiment": "feynman", "dataset": "II.38.3", "variant": "human", "shape": "[2,1,1]",
                      "test_rmse": 0.17})
    causes = Causes({"feynman/II.38.3/human_rsme": "typo"}, reduced_budget=True)
    with pytest.raises(ValueError, match="report.miss_causes: 1 key.*'feynman/II.38.3/human_rsme'"):
        paper_vs_ours(runs, reference_path, [], tmp_path / "pvo.md", causes=causes)
    assert not (tmp_path / "pvo.md").exists()
