"""Science cost probes: every paper-profile experiment has a scaling rule whose probe settings
the registry accepts, the extrapolation is exact on a linear cost, and a missing rule is named."""

from pathlib import Path

import pytest

from kan.pipeline.cli import SCHEMA
from kan.pipeline.config import load_config
from kan.science import cost, registry

ROOT = Path(__file__).resolve().parents[2]
PAPER_SCIENCE = load_config(ROOT / "workflow" / "config" / "paper.yaml", ROOT / SCHEMA)["science"]


@pytest.mark.parametrize("name", list(PAPER_SCIENCE))
def test_probe_settings_of_every_paper_experiment_are_valid(name):
    settings, rule = PAPER_SCIENCE[name], cost.scaling(name)
    full = registry.resolve_settings(name, settings)
    for fraction in rule.fractions:
        scaled = cost.scaled_settings(name, settings, fraction)
        values = registry.resolve_settings(name, scaled)  # the schema accepts the probe's settings
        for knob in rule.knobs:
            folded = sum(full[b] for b, into in rule.priced_with.items() if into == knob)
            expected = (len(full[knob]) if isinstance(full[knob], tuple) else full[knob] + folded) * fraction
            assert (len(values[knob]) if isinstance(values[knob], tuple) else values[knob]) == pytest.approx(expected)
        assert all(values[budget] == 1 for budget in rule.priced_with)
        untouched = set(full) - set(rule.knobs) - set(rule.priced_with)
        assert {k: values[k] for k in untouched} == {k: full[k] for k in untouched}
        assert registry.datasets(name, scaled) == registry.datasets(name, settings)  # data do not scale


def test_list_knobs_keep_their_first_entries_and_early_stop_is_priced_at_its_max():
    scaled = cost.scaled_settings("knots", PAPER_SCIENCE["knots"], 0.05)
    assert scaled["unsup_seeds"] == [0, 1, 2, 3, 4]
    assert scaled["mlp_converged_steps"] == 0.05 * (50_000 + 10_000) and scaled["mlp_max_steps"] == 1


def test_a_fraction_that_is_no_whole_number_of_steps_is_an_error():
    with pytest.raises(ValueError, match=r"kan_steps = 50 x 0.03 = 1.5"):
        cost.scaled_settings("pde", PAPER_SCIENCE["pde"], 0.03)
    with pytest.raises(ValueError, match="seeds = 7 x 0.1"):
        cost.scaled_settings("unsupervised", PAPER_SCIENCE["unsupervised"], 0.1)


def test_extrapolation_is_exact_on_a_linear_cost():
    line = lambda f: 12.0 + 300.0 * f  # noqa: E731
    probes = tuple((f, line(f)) for f in (0.05, 0.1))
    estimate = cost.Estimate("pde", data_seconds=4.0, probes=probes)
    assert estimate.fixed == pytest.approx(12.0) and estimate.slope == pytest.approx(300.0)
    assert estimate.seconds == pytest.approx(4.0 + line(1.0))
    assert cost.fit_line([(f, line(f)) for f in (0.1, 0.2, 0.4)]) == pytest.approx((12.0, 300.0))
    with pytest.raises(ValueError, match="two distinct fractions"):
        cost.fit_line([(0.1, 1.0), (0.1, 2.0)])


def test_an_experiment_without_a_scaling_rule_is_named(monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, "continual_copy", registry.REGISTRY["continual"])
    with pytest.raises(ValueError, match="science experiment 'continual_copy' has no cost scaling rule"):
        cost.scaled_settings("continual_copy", {}, 0.5)
    assert set(cost.SCALINGS) == set(registry.REGISTRY) - {"continual_copy"}


def test_estimate_probes_a_small_experiment(tmp_path):
    settings = {"seeds": [0, 1], "steps_per_phase": 2, "n_per_phase": 20, "n_grid": 50, "kan_grid": 10,
                "mlp_width": [1, 4, 1]}
    estimate = cost.estimate("continual", settings, tmp_path, fractions=(0.5, 1.0))
    assert [f for f, _ in estimate.probes] == [0.5, 1.0] and all(s > 0 for _, s in estimate.probes)
    assert estimate.data_seconds >= 0 and (tmp_path / "probe-0.5" / "summary.json").is_file()
