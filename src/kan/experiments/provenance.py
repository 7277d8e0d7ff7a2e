"""Where a result came from: the git commit of the code that produced it, and the kind of
machine that computed it."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path

_SOURCE = Path(__file__).resolve().parent


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
        return "unknown"
    return commit + ("-dirty" if dirty else "")


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
