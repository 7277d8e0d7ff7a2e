"""DeepMind's knot table over HTTP, against a loopback server (no test needs the internet): a
whole download, a truncated one, a corrupted one, a pinned digest, a table altered on disk, and the
offline fallbacks that the dataset's meta names."""

from __future__ import annotations

import errno
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kan.data import generate
from kan.data.knot import TASKS, resolve
from kan.data.knot_download import OFFLINE, SOURCE, TABLE, fetch, verified_table
from kan.data.knot_table import read_knot_csv


@pytest.fixture(scope="module")
def table_bytes(tmp_path_factory) -> bytes:
    """A table in DeepMind's layout (unnamed row-index column, 17 invariants, signature): the
    shipped SnapPy rows, renumbered."""
    rows = read_knot_csv(resolve(TASKS["snappy"].defaults["path"]), "name").drop(columns="name")
    path = tmp_path_factory.mktemp("served") / TABLE
    rows.to_csv(path)
    return path.read_bytes()


@pytest.fixture
def serve():
    """``serve(body, announced=None)``: the URL of a loopback server answering every GET with
    ``body`` and a Content-Length of ``announced`` (default: the body's length)."""
    servers = []

    def start(body: bytes, announced: int | None = None) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body) if announced is None else announced))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/knot_theory/{TABLE}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _knots(folder, **spec):
    return generate("knot", "deepmind", {"path": str(folder), **spec}, 0)


def test_a_whole_download_is_recorded_and_read_as_deepmind_data(serve, table_bytes, tmp_path):
    folder = fetch(serve(table_bytes), tmp_path / "download")
    table, source = verified_table(folder)
    assert table.read_bytes() == table_bytes and source["bytes"] == len(table_bytes)
    assert source["rows"] == table_bytes.count(b"\n") - 1
    data = _knots(folder)
    assert data.meta["n_train"] + data.meta["n_test"] <= source["rows"]
    assert any(d.startswith("DeepMind's full table, downloaded from http://127.0.0.1") for d in data.meta["deviations"])
    assert not list(tmp_path.glob(".download.tmp-*"))


def test_a_truncated_download_leaves_no_table_and_falls_back_by_name(serve, table_bytes, tmp_path):
    folder = fetch(serve(table_bytes[: len(table_bytes) // 2], announced=len(table_bytes)), tmp_path / "download")
    assert not (folder / TABLE).exists() and not (folder / SOURCE).exists()
    reason = json.loads((folder / OFFLINE).read_text())["reason"]
    assert reason.startswith("Truncated: ")
    data = _knots(folder, offline_path=str(tmp_path / "nowhere"))  # no local copy: the shipped SnapPy rows
    note = next(d for d in data.meta["deviations"] if d.startswith("offline fallback"))
    assert "could not be downloaded" in note and "SnapPy table" in note


def test_an_unreachable_server_falls_back_to_the_local_copy(tmp_path, table_bytes):
    local = tmp_path / "local.csv"
    local.write_bytes(table_bytes)
    folder = fetch("http://127.0.0.1:9/knot_theory_invariants.csv", tmp_path / "download", timeout=5)  # port 9: discard
    assert (folder / OFFLINE).is_file()
    data = _knots(folder, offline_path=str(local))
    note = next(d for d in data.meta["deviations"] if d.startswith("offline fallback"))
    assert note.endswith(f"read {local} instead")


def test_a_local_write_error_is_raised_not_taken_for_offline(serve, table_bytes, tmp_path, monkeypatch):
    """A full disk is not a missing network: the error surfaces and nothing is written."""
    def full_disk(url, target, timeout):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr("kan.data.knot_download._stream", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        fetch(serve(table_bytes), tmp_path / "download")
    assert list(tmp_path.iterdir()) == []


def test_a_corrupted_download_stops_with_the_problem_and_writes_nothing(serve, table_bytes, tmp_path):
    header, first, rest = table_bytes.split(b"\n", 2)
    corrupted = b"\n".join([header, first.replace(b",", b",x", 1), rest])  # a letter in a numeric column
    with pytest.raises(ValueError, match="is not numeric"):
        fetch(serve(corrupted), tmp_path / "download")
    assert list(tmp_path.iterdir()) == []


def test_a_pinned_digest_must_match(serve, table_bytes, tmp_path):
    with pytest.raises(ValueError, match="differs from the pinned"):
        fetch(serve(table_bytes), tmp_path / "download", sha256="0" * 64)


def test_a_table_altered_after_download_is_refused_on_read(serve, table_bytes, tmp_path):
    folder = fetch(serve(table_bytes), tmp_path / "download")
    with open(folder / TABLE, "ab") as table:
        table.write(b"\n")
    with pytest.raises(ValueError, match="differs from .* recorded in source.json"):
        _knots(folder)
