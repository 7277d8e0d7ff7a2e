"""Where a result came from: the git commit of the code that produced it, the kind of machine
that computed it, and a numeric fingerprint of the code on that kind of machine."""

from __future__ import annotations

import csv
import hashlib
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

from kan.files import sources_digest

_SOURCE = Path(__file__).resolve().parent
REFERENCE = _SOURCE.parents[2] / "reports" / "reference"  # src/kan/experiments -> repository root
EXPECTED_FILES = ("ci_expected.csv", "ci_expected_science.csv")
FINGERPRINT = "code_fingerprint"  # the record key of code_fingerprint()
DATA_DEFINITION = "data_definition"  # the record key of the definition digest of a run's dataset (kan.data)
UNRECORDED = "unrecorded"  # fingerprint of a machine kind with no expected values
UNKNOWN = "unknown"  # commit outside a git checkout; fingerprint without the expected-values files
PLACEHOLDERS = (UNRECORDED, UNKNOWN)  # fingerprints that name no code


@lru_cache(maxsize=1)
def git_commit() -> str:
    """``HEAD`` of the repository holding this code, with ``-dirty`` for uncommitted changes;
    ``"unknown"`` outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=_SOURCE, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return UNKNOWN
    return commit + ("-dirty" if dirty else "")


@lru_cache(maxsize=1)
def source_digest() -> str:
    """sha256 (16 hex digits) of the ``kan`` package's source files (Python and C), by relative
    path: any edit of the code changes it, unlike :func:`code_fingerprint`, which follows the
    recorded numbers."""
    package = _SOURCE.parent
    return sources_digest(package, sorted(p for p in package.rglob("*") if p.suffix in (".py", ".c", ".h", ".cpp")
                                          and p.is_file()))


def rerun_fingerprint(machine: str | None = None, science: str | None = None, reference: Path = REFERENCE) -> str:
    """The fingerprint the pipeline reruns a job by (and a training records): :func:`code_fingerprint`
    where this machine kind has recorded ci values; elsewhere ``source:<source_digest>``, so that a
    code change reruns there too instead of every commit sharing the placeholder ``unrecorded``."""
    fingerprint = code_fingerprint(machine, science, reference)
    return f"source:{source_digest()}" if fingerprint in PLACEHOLDERS else fingerprint


@lru_cache(maxsize=1)
def machine_kind(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The kind of CPU, as far as it changes floating-point results: architecture, vendor and
    widest vector extension, e.g. ``x86_64-AuthenticAMD-avx2``. The same code and seeds give
    bitwise identical results on one kind, not across kinds (BLAS and vectorised maths pick
    their kernels, hence their rounding, by CPU; long fits amplify the difference)."""
    vendor, flags = "", set()
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "vendor_id" and not vendor:
            vendor = value
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    level = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else ""
    return "-".join(part for part in (platform.machine() or "unknown", vendor, level) if part)


def code_fingerprint(machine: str | None = None, science: str | None = None, reference: Path = REFERENCE) -> str:
    """What the code computes on ``machine`` (default: this machine's kind), as 16 hex digits:
    the sha256 of the ci profile's expected values recorded for that kind. Trainings
    (``science`` None) hash the trainings' values (``ci_expected.csv``); science experiment
    ``science`` hashes those and its own rows of ``ci_expected_science.csv``, so a change to one
    experiment's numbers does not make the others' records stale. Two commits with the same
    fingerprint give the same ci numbers on that kind, so their results can be mixed.
    ``"unrecorded"`` when that kind has no expected values (for ``science``: none of that
    experiment), ``"unknown"`` without the
    expected-values files (an installed copy outside the repository)."""
    if not all((reference / name).is_file() for name in EXPECTED_FILES):
        return UNKNOWN
    machine = machine or machine_kind()
    trainings, experiments = EXPECTED_FILES
    digest = hashlib.sha256()
    rows = _rows(reference / trainings, machine)
    digest.update("".join(",".join(row) + "\n" for row in rows).encode("utf-8"))
    if science is not None:
        own = [row for row in _rows(reference / experiments, machine) if row[1] == science]
        if not own:  # this experiment's numbers are not recorded on this kind (yet, or no more)
            return UNRECORDED
        digest.update(f"{experiments}\n".encode())
        digest.update("".join(",".join(row) + "\n" for row in own).encode("utf-8"))
    return digest.hexdigest()[:16] if rows else UNRECORDED


def _rows(path: Path, machine: str) -> list[list[str]]:
    """The rows of an expected-values CSV recorded on ``machine``, sorted."""
    with open(path, newline="", encoding="utf-8") as handle:
        return sorted(row for row in csv.reader(handle) if row and row[0] == machine)
