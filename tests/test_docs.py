"""The project's Markdown (README, docs, dataset notes, the committed paper-run report): every
relative link names a file of the repository and, where it has a ``#fragment``, a heading of that
file, spelled as GitHub turns headings into anchors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("datasets/*/README.md"),
                    ROOT / "datasets" / "README.md", *ROOT.glob("reports/paper-run/**/*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, inline code and link markup dropped, punctuation
    other than hyphens and underscores removed, each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    """The anchors of a document's headings (code blocks left out; repeated headings get GitHub's
    -1, -2 suffixes)."""
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", document.read_text(encoding="utf-8"))):
        name = base = anchor(heading)
        repeat = 0
        while name in found:
            repeat += 1
            name = f"{base}-{repeat}"
        found.add(name)
    return found


def relative_links(document: Path) -> list[str]:
    """The document's links that point into the repository (no scheme, no mail address)."""
    text = FENCE.sub("", document.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_the_documents_are_found() -> None:
    assert {ROOT / "README.md", ROOT / "docs" / "pipeline.md", ROOT / "reports" / "paper-run" / "paper_vs_ours.md"} <= set(DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in relative_links(document):
        path_text, _, fragment = target.partition("#")
        path = (document.parent / path_text).resolve() if path_text else document
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path):
            broken.append(f"{target}: no heading with anchor #{fragment} in {path.relative_to(ROOT)}")
    assert not broken, f"{document.relative_to(ROOT)} has broken links: " + "; ".join(broken)


@pytest.mark.parametrize(("heading", "expected"), [
    ("The default run against its 20-minute budget", "the-default-run-against-its-20-minute-budget"),
    ("Using the library from Python", "using-the-library-from-python"),
    ("Paper profile: `make paper-shard`", "paper-profile-make-paper-shard"),
    ("Science experiments (paper §3.4–4.4)", "science-experiments-paper-3444"),
])
def test_anchor_follows_github(heading: str, expected: str) -> None:
    assert anchor(heading) == expected
