"""Our numbers next to the paper's: ratios, ⚑ flags, tolerance and the Markdown report."""

import numpy as np
import pytest

from kan.reporting.compare import compare_to_paper, comparisons, paper_vs_ours
from kan.reporting.reference import load_reference

# Made-up runs; the paper's cells they face: jv min KAN 4.93e-3 ([2,2,1]), best KAN 1.64e-3,
# MLP 5.52e-3; I.26.2 human-shape RMSE 1.22e-4 (⚑).
SPECIAL_AND_FEYNMAN = [
    {"variant": "pruned", "shape": "[2,2,1]", "initial_shape": "[2,5,1]", "test_rmse": 9.86e-3},
    {"variant": "pruned", "shape": "[2,3,1]", "initial_shape": "[2,5,1]", "test_rmse": 3e-3},
    {"variant": "pruned", "shape": "[2,1,1]", "initial_shape": "[2,5,1]", "test_rmse": 1e-9, "status": "diverged"},
    {"shape": "[2,5,1]", "test_rmse": 8.2e-4},
    {"model": "mlp", "test_rmse": 0.552},
    {"experiment": "feynman", "dataset": "I.26.2", "variant": "human", "shape": "[2,2,2,1,1]", "test_rmse": 6.1e-3},
]


def _find(found, dataset, quantity):
    return next(c for c in found if c.dataset == dataset and c.quantity == quantity)


@pytest.fixture
def runs(make_runs):
    return make_runs(*SPECIAL_AND_FEYNMAN)


def test_ratio_of_a_known_cell(runs, reference_path):
    found = comparisons(runs, reference_path)
    cell = _find(found, "jv", "min_kan_rmse")  # the failed [2,1,1] run is not the minimal shape
    assert (cell.experiment, cell.paper, cell.ours) == ("special", 4.93e-3, 9.86e-3)
    assert cell.ratio == pytest.approx(2.0)
    assert cell.within_tolerance and not cell.uncertain
    shape = _find(found, "jv", "min_kan_shape")
    assert (shape.paper, shape.ours, shape.ratio, shape.within_tolerance) == ("[2,2,1]", "[2,2,1]", None, True)
    best = _find(found, "jv", "best_kan_rmse")  # the best pruned KAN, not the better unpruned [2,5,1]
    assert (best.ours, best.ratio) == (3e-3, pytest.approx(3e-3 / 1.64e-3))
    assert _find(found, "jv", "best_kan_shape").ours == "[2,3,1]"  # against the paper's [2,3,1,1,1]
    assert not any(c.quantity.startswith("any_kan") for c in found)  # not a paper cell


def test_mismatches_name_the_cell_and_flag_uncertain_ones(runs, reference_path):
    mismatches = {(c.experiment, c.dataset, c.quantity): c for c in compare_to_paper(runs, reference_path)}
    assert set(mismatches) == {("special", "jv", "mlp_rmse"), ("feynman", "I.26.2", "human_rmse")}
    assert mismatches[("special", "jv", "mlp_rmse")].ratio == pytest.approx(100)
    flagged = mismatches[("feynman", "I.26.2", "human_rmse")]
    assert flagged.uncertain and flagged.paper == 1.22e-4
    assert compare_to_paper(runs, load_reference(reference_path), tolerance_factor=1000) == []


def test_report_lists_ratios_flags_and_deviations(runs, reference_path, tmp_path):
    out = paper_vs_ours(runs, reference_path, ["ranges are ours", "fewer steps"], tmp_path / "paper_vs_ours.md")
    text = out.read_text(encoding="utf-8")
    assert "| jv | min_kan_rmse | 4.93e-03 | 9.86e-03 | 2 |  | within tolerance |" in text
    assert "| I.26.2 | human_rmse | 1.22e-04 | 6.10e-03 | 50 | ⚑ | outside ×10 |" in text
    assert "- I.26.2, human_rmse: ours 6.10e-03 is 50× the paper's 1.22e-04" in text
    assert "(paper cell ⚑: uncertain)" in text
    assert "- jv, mlp_rmse: ours 5.52e-01 is 100× the paper's 5.52e-03" in text
    assert "| jv | min_kan_shape | [2,2,1] | [2,2,1] | — |  | same shape |" in text
    assert "Left out: 1 diverged (kan at G = 3). A diverged run is the grid phase" in text
    assert "No runs for 14 of 15 paper rows" in text
    assert text.rstrip().endswith("- ranges are ours\n- fewer steps")
    for block in ("pde", "continual_learning", "knot", "anderson", "speed"):
        assert f"- {block}: arXiv 2404.19756" in text


def test_partial_data_compares_what_is_there(make_runs, reference_path, tmp_path):
    params = np.array([20, 40, 80, 160])
    toy = make_runs(*(
        {"experiment": "toy_scaling", "dataset": "xy", "variant": "human", "shape": "[2,2,1]", "n_params": int(n),
         "test_rmse": float(0.5 * n**-4.0)}
        for n in params
    ))
    found = comparisons(toy, reference_path)
    assert [(c.experiment, c.dataset, c.quantity) for c in found] == [("toy_scaling", "xy", "kan_exponent")]
    assert found[0].ratio == pytest.approx(1.0) and found[0].approximate
    empty = paper_vs_ours(toy.iloc[:0], reference_path, [], tmp_path / "empty.md").read_text(encoding="utf-8")
    assert "0 numbers compared" in empty and "None recorded." in empty
    assert "Left out: none.\n" in empty and "A diverged run" not in empty


def test_report_checks_the_table_claims_it_has_numbers_for(make_runs, reference_path, tmp_path):
    params = np.array([20, 40, 80, 160])
    kan = ({"experiment": "toy_scaling", "dataset": "xy", "variant": "human", "shape": "[2,2,1]", "n_params": int(n),
            "test_rmse": float(0.5 * n**-4.0)} for n in params)
    mlp = ({"experiment": "toy_scaling", "dataset": "xy", "model": "mlp", "shape": f"[2,{w},1]", "n_params": 4 * w + 1,
            "test_rmse": float(1e-3 * (4 * w + 1) ** -0.5)} for w in (5, 20, 80))
    text = paper_vs_ours(make_runs(*kan, *mlp), reference_path, [], tmp_path / "toy.md").read_text(encoding="utf-8")
    # xy: MLP exponent 0.5 below the KAN's 4, and the best MLP (5.6e-5) above the best KAN (7.6e-10)
    assert "| Scaling on toy functions | 1 | 1 | 1 | 0 | — | 2 of 2 |" in text
    assert "| MLPs plateau: for xy our MLP front falls with a smaller exponent than our KAN's | xy.mlp_exponent = 0.5 |" in text
    assert "[4,9,1] is much worse than [4,2,2,1]: our sweep trains the paper's shape [4,4,2,1]" in text
    assert "no number of ours for j0_20x.mlp_exponent" in text  # no J0 runs: listed, not counted
