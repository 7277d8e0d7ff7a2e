"""Resuming after a kill: a killed ``snakemake`` leaves its lock in ``.snakemake/locks``, and the
next run stops with a LockException until ``snakemake --unlock``. Unlocking is safe only when no
other snakemake run uses the working directory; :func:`unlock_if_idle` checks that first (on
Linux, from ``/proc``) and refuses, naming the running processes, when one does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

LOCKS = Path(".snakemake") / "locks"


def _snakemake_directory(argv: Sequence[str], cwd: Path) -> Path | None:
    """The working directory of a snakemake command line run from ``cwd``; None for other commands.
    The directory flag is read as snakemake's argparse reads it: ``--directory DIR``,
    ``--directory=DIR``, a unique prefix of ``--directory`` (``--dir DIR``), ``-d DIR`` or ``-dDIR``;
    the last one counts."""
    is_snakemake = any(Path(a).name == "snakemake" for a in argv[:3]) or ("snakemake" in argv[1:3] and "-m" in argv[1:3])
    if not is_snakemake:
        return None
    directory = None
    for index, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if len(name) >= 4 and "--directory".startswith(name):  # argparse takes unique prefixes (--dir)
            directory = value if equals else (argv[index + 1] if index + 1 < len(argv) else None)
        elif arg == "-d":
            directory = argv[index + 1] if index + 1 < len(argv) else None
        elif arg.startswith("-d") and not arg.startswith("--"):  # -dDIR
            directory = arg[2:]
    return (cwd / directory).resolve() if directory else cwd.resolve()


def active_runs(directory: Path | str, proc: Path = Path("/proc")) -> list[int]:
    """PIDs of the snakemake processes (other than this one) working in ``directory``."""
    directory, found = Path(directory).resolve(), []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # the process ended, or is not ours to inspect
            continue
        if _snakemake_directory([a for a in argv if a], cwd) == directory:
            found.append(int(entry.name))
    return sorted(found)


def unlock_if_idle(directory: Path | str, snakefile: Path | str, proc: Path = Path("/proc")) -> str:
    """Remove a stale snakemake lock of ``directory`` (``snakemake --unlock``) when no snakemake
    run is active there; RuntimeError naming the running processes otherwise. Returns what it did."""
    directory = Path(directory)
    running = active_runs(directory, proc)
    if running:
        raise RuntimeError(f"snakemake is running in {directory.resolve()} (pid {', '.join(map(str, running))}); "
                           "not unlocking: wait for it or stop it first")
    if not any((directory / LOCKS).glob("*")):
        return "no lock to remove"
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(directory), "--unlock"],
                   check=True, capture_output=True)
    return f"removed the stale lock of {directory.resolve()}"
