"""The science experiments next to the paper: accuracies by difference, other numbers by ratio,
claims as bounds, and their place in paper_vs_ours.md (made-up numbers)."""

import pandas as pd
import pytest

from kan.reporting.compare import paper_vs_ours
from kan.reporting.reference import load_reference
from kan.reporting.science import claim_checks, number_comparisons, science_report

SCIENCE = pd.DataFrame(
    [("knots", "kan_17_1_c.accuracy", 0.80), ("knots", "kan_17_1_c.params", 4000.0), ("knots", "mlp_early_stop.params", 2e5),
     ("knots", "rank.mu_r", 2.0), ("continual", "mlp_over_kan.forgetting", 50.0), ("continual", "kan.earlier_peak_height", 0.99),
     ("newcomer", "xy.r2", 0.999)],
    columns=["experiment", "metric", "value"],
)


@pytest.fixture
def reference(reference_path):
    return load_reference(reference_path)


def _ours(experiment):
    part = SCIENCE[SCIENCE["experiment"] == experiment]
    return dict(zip(part["metric"], part["value"]))


def test_accuracies_compare_by_difference_and_other_numbers_by_ratio(reference):
    found, missing = number_comparisons(_ours("knots"), reference["knot"])
    cells = {c.quantity: c for c in found}
    accuracy = cells["KAN: test_accuracy"]
    assert (accuracy.paper, accuracy.ours, accuracy.difference_text) == (0.816, 0.80, "-1.6 pts")
    assert accuracy.within_tolerance  # |0.80 - 0.816| <= 0.05
    params = cells["KAN: params"]
    assert params.difference_text == "×20" and not params.within_tolerance  # outside ×10
    assert "mlp_early_stop.accuracy" in missing and "formula.a_deepmind.accuracy" in missing


def test_claims_hold_or_fail_with_bounds_from_numbers_or_metrics(reference):
    checks = {c.metric: c for c in claim_checks(_ours("knots"), reference["knot"])[0]}
    assert checks["kan_17_1_c.params"].holds and checks["kan_17_1_c.params"].bound == 2e5  # bound is another metric
    assert not checks["rank.mu_r"].holds
    assert "needs ≤ 1" in checks["rank.mu_r"].statement()


def test_paper_vs_ours_gets_science_sections(reference_path, make_runs, tmp_path):
    text = paper_vs_ours(make_runs().iloc[:0], reference_path, [], tmp_path / "pvo.md", SCIENCE).read_text(encoding="utf-8")
    assert "## Science: Knot theory (§4.3)" in text and "## Science: Continual learning (§3.5)" in text
    assert "| KAN: test_accuracy | 81.6% | 80.0% | -1.6 pts |  | within tolerance |" in text
    assert "- KAN: params: ours 4e+03 against the paper's 200 (×20), beyond the tolerance ×10. Likely cause:" in text
    assert "- not reproduced: μ_r is the most important input of the KAN" in text
    assert "Every number is within the tolerance and every claim holds." in text  # continual
    assert "## Science: newcomer" in text and "| xy.r2 | 0.999 |" in text  # no paper block: headline numbers
    footer = text.split("## Paper results without a counterpart")[1]
    assert "- knot:" not in footer and "- pde:" in footer  # compared blocks leave the footer
    assert "- B [3,1] KAN: our knot experiment derives its KAN formula" in text  # not compared, with the reason
    report = science_report(SCIENCE, load_reference(reference_path))
    assert [block.name for block in report.blocks] == ["continual_learning", "knot"]
    assert len(report.checks) == 4  # two continual claims; knots: the params bound and the μ_r rank
