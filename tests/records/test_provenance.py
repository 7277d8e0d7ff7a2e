"""Provenance of records: the code fingerprint follows the ci expected values of one machine kind."""

from __future__ import annotations

import shutil

import pytest

from kan.records.provenance import (EXPECTED_FILES, REFERENCE, UNRECORDED, code_fingerprint, machine_kind,
                                    rerun_fingerprint, source_digest)


@pytest.fixture
def reference(tmp_path):
    for name in EXPECTED_FILES:
        shutil.copy(REFERENCE / name, tmp_path / name)
    return tmp_path


def _kinds(reference):
    lines = (reference / EXPECTED_FILES[0]).read_text().splitlines()[1:]
    return sorted({line.split(",", 1)[0] for line in lines})


def test_the_fingerprint_moves_with_a_number_of_its_own_machine_kind_only(reference):
    ours, other = _kinds(reference)[:2]
    before = {kind: code_fingerprint(kind, reference=reference) for kind in (ours, other)}
    assert before[ours] != before[other] and UNRECORDED not in before.values()
    path = reference / EXPECTED_FILES[0]
    lines = path.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(ours + ","))
    fields = lines[row].split(",")
    fields[-1] = repr(float(fields[-1]) * (1 + 1e-12))  # the last digits of one test RMSE
    lines[row] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    assert code_fingerprint(ours, reference=reference) != before[ours]
    assert code_fingerprint(other, reference=reference) == before[other]


def test_a_science_experiment_has_its_own_fingerprint(reference):
    kind = _kinds(reference)[0]
    before = {name: code_fingerprint(kind, name, reference) for name in ("knots", "pde", None)}
    assert len(set(before.values())) == 3
    path = reference / EXPECTED_FILES[1]
    header, *rows = path.read_text().splitlines()
    moved = [row + "1" if row.startswith(kind + ",knots,") else row for row in reversed(rows)]
    path.write_text("\n".join([header, *moved]) + "\n")  # knots' numbers move; row order changes
    after = {name: code_fingerprint(kind, name, reference) for name in before}
    assert after["knots"] != before["knots"]
    assert after["pde"] == before["pde"] and after[None] == before[None]


def test_a_machine_kind_without_expected_values_is_unrecorded_and_missing_files_unknown(reference, tmp_path):
    assert code_fingerprint("riscv64-unknown", reference=reference) == UNRECORDED
    kind = _kinds(reference)[0]
    path = reference / EXPECTED_FILES[1]
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header, *(r for r in rows if not r.startswith(kind + ",pde,"))]) + "\n")
    assert code_fingerprint(kind, "pde", reference) == UNRECORDED  # its rows dropped on this kind
    assert code_fingerprint(kind, "knots", reference) not in (UNRECORDED, "unknown")
    assert code_fingerprint(_kinds(reference)[0], reference=tmp_path / "nowhere") == "unknown"


def test_jobs_rerun_by_the_source_on_a_machine_kind_without_expected_values(reference):
    """Every commit shares the placeholder "unrecorded" there, so code changes would never rerun."""
    kind = _kinds(reference)[0]
    assert rerun_fingerprint(kind, reference=reference) == code_fingerprint(kind, reference=reference)
    assert rerun_fingerprint(kind, "pde", reference) == code_fingerprint(kind, "pde", reference)
    for machine in ("riscv64-unknown", "aarch64"):
        assert rerun_fingerprint(machine, reference=reference) == f"source:{source_digest()}"
        assert rerun_fingerprint(machine, "pde", reference) == f"source:{source_digest()}"


def test_this_machine_kind_has_ci_values():
    """The tests of publishing and of the ci profile's records need current records, which only a
    kind with recorded ci values makes: on a new kind this test says what to do, where those fail
    on counts of current trainings."""
    kind = machine_kind()
    assert code_fingerprint(kind) != UNRECORDED, (
        f"no ci values are recorded for this machine kind ({kind}): run `make ci-expected` on it and "
        "commit reports/reference/ci_expected*.csv (docs/pipeline.md, CI regression)")
