"""The command line: sweep sizes, and the expected-values round trip used by `make ci-expected`."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest

from kan.pipeline.cli import main
from kan.records.aggregate import runs_table
from kan.records.provenance import machine_kind


def test_plan_prints_sizes_and_the_step_definition(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert main(["plan", "workflow/config/ci.yaml"]) == 0
    out = capsys.readouterr().out
    assert "toy_scaling" in out and "one step = one optimizer step" in out
    assert out.splitlines()[-2].split()[0] == "total"


def test_expected_then_check_round_trip(two_runs, repo, tmp_path, capsys):
    runs_csv = tmp_path / "runs.csv"
    runs_table(two_runs).to_csv(runs_csv, index=False)
    reference = tmp_path / "reference"
    reference.mkdir()
    shutil.copy(repo / "reports" / "reference" / "paper.yaml", reference)
    (reference / "ci_expected.yaml").write_text("rtol: 1.0e-6\nband_factor: 2.0\npaper_checks: []\ntrends: []\n")
    assert main(["expected", str(runs_csv), "--reference", str(reference)]) == 0
    assert main(["check", str(runs_csv), "--reference", str(reference)]) == 0
    changed = pd.read_csv(runs_csv).assign(test_rmse=lambda f: f.test_rmse * 2)
    changed.to_csv(runs_csv, index=False)
    assert main(["check", str(runs_csv), "--reference", str(reference)]) == 1
    assert "test_rmse = 0.4, expected 0.2" in capsys.readouterr().out


def test_expected_and_check_cover_the_science_table_beside_the_runs(two_runs, repo, tmp_path, capsys):
    runs_csv = tmp_path / "runs.csv"
    runs_table(two_runs).to_csv(runs_csv, index=False)
    science = pd.DataFrame({"experiment": ["pde"], "metric": ["kan.l2"], "value": [1e-3]})
    science.to_csv(tmp_path / "science.csv", index=False)
    reference = tmp_path / "reference"
    reference.mkdir()
    shutil.copy(repo / "reports" / "reference" / "paper.yaml", reference)
    (reference / "ci_expected.yaml").write_text("rtol: 1.0e-6\nband_factor: 2.0\npaper_checks: []\ntrends: []\nscience_rtol: 1.0e-6\n"
                                                "science_paper_checks: []\nscience_claims: []\n")
    assert main(["expected", str(runs_csv), "--reference", str(reference)]) == 0
    recorded = pd.read_csv(reference / "ci_expected_science.csv")
    assert recorded["machine"].tolist() == [machine_kind()] and recorded.drop(columns="machine").equals(science)
    assert main(["check", str(runs_csv), "--reference", str(reference)]) == 0
    science.assign(value=2e-3).to_csv(tmp_path / "science.csv", index=False)
    assert main(["check", str(runs_csv), "--reference", str(reference)]) == 1
    assert "science pde: kan.l2 = 0.002, expected 0.001" in capsys.readouterr().out


def test_ui_serves_the_pipeline_store_on_loopback_with_one_worker(monkeypatch, tmp_path):
    calls = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr("os.execvp", lambda program, args: calls.append(args))
    main(["ui", "--port", "5001"])
    command = calls[0]
    assert command[:2] == ["mlflow", "server"]
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path.resolve()}/results/mlflow.db"
    assert command[command.index("--host") + 1] == "127.0.0.1" and command[command.index("--workers") + 1] == "1"


def test_config_error_is_a_message_and_status_2_not_a_traceback(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments:\n  toy_scaling: {family: synthetic, datasets: [xy], train: {steps: 0, grid_schedule: [3]}}\n")
    assert main(["plan", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.startswith("kan plan: invalid pipeline config:") and "at experiments.toy_scaling.train.steps:" in captured.err


def test_missing_or_malformed_config_file_is_status_2(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert main(["plan", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err == f"kan plan: No such file or directory: {tmp_path / 'nope.yaml'}\n"
    (tmp_path / "broken.yaml").write_text("experiments: [\n")
    assert main(["publish", str(tmp_path), "--config", str(tmp_path / "broken.yaml")]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_bad_input_file_of_a_command_is_status_2(two_runs, tmp_path, capsys):
    """check on an expected-values file without the machine column: the command's ValueError, no traceback."""
    runs_csv = tmp_path / "runs.csv"
    runs_table(two_runs).to_csv(runs_csv, index=False)
    reference = tmp_path / "reference"
    reference.mkdir()
    pd.DataFrame({"run_id": ["x"]}).to_csv(reference / "ci_expected.csv", index=False)
    (reference / "ci_expected.yaml").write_text("rtol: 1.0e-9\nband_factor: 2\n")
    assert main(["check", str(runs_csv), "--reference", str(reference)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kan check: ") and "no 'machine' column" in err and "Traceback" not in err


def test_programming_errors_keep_their_traceback(monkeypatch):
    """Only bad input is caught: an error of another kind from a command still propagates."""
    import kan.pipeline.cli as cli

    def broken(args):
        raise TypeError("'dict' object is not callable")

    monkeypatch.setattr(cli, "_plan", broken)
    with pytest.raises(TypeError, match="not callable"):
        main(["plan"])


def test_python_m_kan_prints_no_traceback_for_a_config_error(repo, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments: {toys: {}}\n")
    result = subprocess.run([sys.executable, "-m", "kan", "plan", str(bad)], cwd=repo, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "toys" in result.stderr, result.stderr
