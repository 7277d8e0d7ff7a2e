"""kan.files: a folder is replaced whole or not at all, whatever fails, and leaves no hidden leftovers."""

import os
import stat

import pytest

from kan import files


def _folder(path, text):
    path.mkdir(parents=True)
    (path / "a.txt").write_text(text)


def _hidden(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_a_finished_block_replaces_the_folder(tmp_path):
    target = tmp_path / "run"
    _folder(target, "old")
    with files.atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new" and _hidden(tmp_path) == []


def test_a_failing_block_leaves_the_folder_as_it_was(tmp_path):
    target = tmp_path / "run"
    _folder(target, "old")
    with pytest.raises(ZeroDivisionError):
        with files.atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("half")
            1 / 0
    assert (target / "a.txt").read_text() == "old" and _hidden(tmp_path) == []


def test_a_failing_swap_puts_the_previous_version_back(tmp_path, monkeypatch):
    target = tmp_path / "run"
    _folder(target, "old")
    real = os.replace

    def replace(src, dst):
        if ".tmp-" in str(src):
            raise OSError("disk trouble")
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(OSError, match="disk trouble"):
        with files.atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "old" and _hidden(tmp_path) == []


def test_a_new_folder_and_its_parents_are_created(tmp_path):
    target = tmp_path / "deep" / "er" / "run"
    with files.atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new"


def test_file_digest(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert files.sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_the_folder_gets_the_permissions_mkdir_gives(tmp_path):
    """Readable by the group and others as the umask allows (shared clusters), not private like a temp folder."""
    old = os.umask(0o022)
    try:
        with files.atomic_folder(tmp_path / "run") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755


def test_a_file_is_replaced_whole_or_left_as_it_was(tmp_path):
    target = tmp_path / "records" / "runs.csv"
    with files.atomic_file(target) as tmp:  # the parent is created
        tmp.write_text("first")
    with pytest.raises(RuntimeError):
        with files.atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "first" and _hidden(target.parent) == []
    with files.atomic_file(target) as tmp:
        tmp.write_text("second")
    assert target.read_text() == "second" and _hidden(target.parent) == []


def test_a_write_clears_what_a_killed_write_of_the_same_name_left(tmp_path):
    target, other = tmp_path / "run", tmp_path / "run2"
    _folder(target, "old")
    _folder(tmp_path / ".run.tmp-dead", "half")  # killed while filling
    _folder(tmp_path / ".run.old-dead", "older")  # killed after the swap, before the clean-up
    _folder(tmp_path / ".run2.tmp-live", "another folder's")
    (tmp_path / ".run.json.tmp-dead").write_text("half")
    with files.atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("new")
    with files.atomic_file(tmp_path / "run.json") as tmp:
        tmp.write_text("{}")
    assert (target / "a.txt").read_text() == "new" and _hidden(tmp_path) == [".run2.tmp-live"]
    assert not other.exists()


def test_a_folder_killed_between_its_two_renames_gets_its_previous_version_back(tmp_path):
    target = tmp_path / "run"
    _folder(tmp_path / ".run.old-dead", "previous")  # renamed aside, the new one never renamed in
    with pytest.raises(ZeroDivisionError):
        with files.atomic_folder(target):
            1 / 0
    assert (target / "a.txt").read_text() == "previous" and _hidden(tmp_path) == []
