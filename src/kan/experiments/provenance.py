"""Where a result came from: the git commit of the code that produced it."""

from __future__ import annotations

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
