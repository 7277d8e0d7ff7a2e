"""DeepMind's published knot-invariant table (Davies et al. 2021, CC BY 4.0), downloaded once.

:func:`fetch` writes a download folder:

- ``knot_theory_invariants.csv`` and ``source.json`` (URL, sha256, bytes, rows) when the table
  came in whole: streamed to a temporary file, its length checked against the server's
  Content-Length, its layout checked (:func:`kan.data.knot_table.read_knot_csv`) and its digest
  against a pinned one when given, then renamed into place, so the folder never holds half a table;
- ``offline.json`` (URL, reason) when the network cannot deliver it (unreachable, timeout, cut
  short): the knot task then falls back to a local table and its meta says so.

A table that arrives whole but is not DeepMind's layout, or differs from the pinned digest, stops
with an error naming the problem. :func:`verified_table` checks the digest on every later read.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kan.files import atomic_folder, sha256_file
from kan.data.knot_table import read_knot_csv

log = logging.getLogger(__name__)
DEEPMIND_URL = "https://storage.googleapis.com/maths_conjectures/knot_theory/knot_theory_invariants.csv"
TABLE, SOURCE, OFFLINE = "knot_theory_invariants.csv", "source.json", "offline.json"
DOWNLOAD_DIR = "datasets/external/deepmind_knots"  # relative to the workflow's working directory
_CHUNK = 1 << 20


class Truncated(OSError):
    """The connection ended before the announced number of bytes arrived."""


# what "the network cannot deliver it" means; a local OSError (disk full, no permission) is raised
_NETWORK_ERRORS = (urllib.error.URLError, Truncated, TimeoutError, ConnectionError, http.client.HTTPException,
                   ssl.SSLError)  # a TLS stream cut mid-body is not wrapped in URLError


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _stream(url: str, target: Path, timeout: float) -> int:
    """Copy ``url`` into ``target``; the number of bytes. Truncated when fewer bytes than the
    Content-Length arrived."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
        announced = response.headers.get("Content-Length")
        size = 0
        while True:
            try:
                chunk = response.read(_CHUNK)
            except http.client.IncompleteRead as error:  # the server closed mid-body
                raise Truncated(f"connection closed after {size + len(error.partial)} bytes") from None
            if not chunk:
                break
            out.write(chunk)
            size += len(chunk)
    if announced is not None and size != int(announced):
        raise Truncated(f"got {size} of {announced} bytes")
    return size


def fetch(url: str, out_dir: Path | str, timeout: float = 30.0, sha256: str | None = None) -> Path:
    """Download the table at ``url`` into the folder ``out_dir`` (see the module docstring);
    return ``out_dir``. ValueError when a complete download is not a valid table or differs from
    ``sha256``; a network failure writes ``offline.json`` instead."""
    out_dir = Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        try:
            size = _stream(url, tmp / TABLE, timeout)
        except _NETWORK_ERRORS as error:  # unreachable, refused, timed out, cut short
            reason = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
            log.warning("knot table not downloaded from %s (%s): the local fallback will be used", url, reason)
            (tmp / TABLE).unlink(missing_ok=True)
            _write_json(tmp / OFFLINE, {"url": url, "reason": reason})
        else:
            digest = sha256_file(tmp / TABLE)
            if sha256 is not None and digest != sha256:
                raise ValueError(f"knot table from {url}: sha256 {digest} differs from the pinned {sha256}")
            rows = len(read_knot_csv(tmp / TABLE, "row"))
            _write_json(tmp / SOURCE, {"url": url, "sha256": digest, "bytes": size, "rows": rows})
    return out_dir


def is_download(path: Path) -> bool:
    """True for a folder :func:`fetch` wrote."""
    return (path / SOURCE).is_file() or (path / OFFLINE).is_file()


def verified_table(folder: Path) -> tuple[Path | None, dict[str, Any]]:
    """(the downloaded table, its source record) of a download folder, the table's sha256
    checked against the record; (None, the offline record) when the download failed."""
    if (folder / OFFLINE).is_file():
        return None, json.loads((folder / OFFLINE).read_text(encoding="utf-8"))
    source = json.loads((folder / SOURCE).read_text(encoding="utf-8"))
    digest = sha256_file(folder / TABLE)
    if digest != source["sha256"]:
        raise ValueError(f"{folder / TABLE}: sha256 {digest} differs from {source['sha256']} recorded in {SOURCE} "
                         "when it was downloaded; delete the folder to download it again")
    return folder / TABLE, source
