"""Files and folders written whole or not at all, their digests, and JSON files read back with
an error that names them: the bottom layer, under the run records (:mod:`kan.records`) and the
data families (:mod:`kan.data`).

A file or folder is written in a hidden temporary sibling (``.<name>.tmp-*``) and renamed into place;
a previous folder is first renamed aside (``.<name>.old-*``) and then removed, so readers see
the old folder or the new one, never a mix (between the two renames, for an instant, none).
Readers of results skip such hidden leftovers; a process killed mid-write leaves them, and the
next write of the same name clears them (a folder killed between its two renames gets its
previous version back first). So a path has one writer at a time: a second process writing the
same path would clear the first one's siblings (no pipeline job shares an output path; Snakemake
gives each output one job).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator


@contextlib.contextmanager
def atomic_folder(directory: Path | str) -> Iterator[Path]:
    """Yield an empty hidden sibling of ``directory`` to fill. When the block ends normally it
    replaces ``directory``; when the block or the swap raises, it is deleted and ``directory``
    stays as it was (a previous version renamed aside is put back)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(directory)
    tmp = directory.with_name(f".{directory.name}.tmp-{uuid.uuid4().hex}")
    tmp.mkdir()  # not mkdtemp: its folders are private (0700); this one gets the umask's permissions
    old = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex}")
    try:
        yield tmp
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not directory.exists():
            os.replace(old, directory)
        raise
    shutil.rmtree(old, ignore_errors=True)  # the new folder is in place: a leftover is only clutter


def _clear_leftovers(path: Path) -> None:
    """Remove the hidden siblings a killed write of ``path`` left; a folder missing after a kill
    between its two renames first gets its previous version (the newest ``.old-*``) back."""
    pattern = glob.escape(path.name)
    for tmp in path.parent.glob(f".{pattern}.tmp-*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    olds = sorted(path.parent.glob(f".{pattern}.old-*"), key=lambda old: old.stat().st_mtime)
    if olds and not path.exists():
        os.replace(olds.pop(), path)
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: Path | str) -> Iterator[Path]:
    """Yield a hidden sibling path of ``path`` to write. When the block ends normally it replaces
    ``path`` in one rename; when it raises, it is deleted and ``path`` stays as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: Path | str, remedy: str) -> Any:
    """A JSON file's content; ValueError naming the file and ``remedy`` (what to do about it)
    when it is not valid JSON (a write cut short, a hand edit)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); {remedy}") from None


def sources_digest(folder: Path, paths: Iterable[Path]) -> str:
    """sha256 (16 hex digits) of ``paths`` in the order given, each by its path relative to
    ``folder`` and its bytes: any edit, added or renamed file changes it."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.relative_to(folder).as_posix()}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def sha256_file(path: Path | str) -> str:
    """Hex sha256 digest of a file."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
