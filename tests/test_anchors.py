"""Heading anchors as the docs generators slug them, and citations that link to them."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.anchors import slug_anchors
from knowledge.documents import DocsRoot
from knowledge.indexer import Indexer
from knowledge.retrieval import HybridRetriever
from knowledge.store import ChunkStore

HEADINGS = ["Install on macOS (Apple silicon)", "What's new in v2.0?", "Install on macOS (Apple silicon)",
            "Ünïcode café"]


@pytest.mark.parametrize("style, expected", [
    # github-slugger (GitHub, Docusaurus): punctuation out, each space a hyphen, repeats -1
    ("github", ["install-on-macos-apple-silicon", "whats-new-in-v20", "install-on-macos-apple-silicon-1",
                "ünïcode-café"]),
    # Python-Markdown toc (MkDocs): ASCII, runs of spaces/hyphens one hyphen, repeats _1
    ("mkdocs", ["install-on-macos-apple-silicon", "whats-new-in-v20", "install-on-macos-apple-silicon_1",
                "unicode-cafe"]),
    # docutils make_id (Sphinx)
    ("sphinx", ["install-on-macos-apple-silicon", "what-s-new-in-v2-0", "install-on-macos-apple-silicon",
                "unicode-cafe"]),
    ("none", [None, None, None, None]),
])
def test_styles_slug_as_their_generators_do(style: str, expected: list) -> None:
    assert slug_anchors(HEADINGS, style) == expected


def test_folder_citations_link_to_the_heading_anchor(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "install.md").write_text("# Install\n\nIntro.\n\n## On macOS (Apple silicon)\n\n"
                                     "Use the arm64 build of driftctl from the releases page.\n")
    store = ChunkStore(str(tmp_path / "index"))
    Indexer(store, embedder).run([DocsRoot(docs, "docs", "https://docs.example.com/", anchors="mkdocs")])
    passage = HybridRetriever(store, embedder).search("arm64 build for apple silicon macs", k=1)[0]
    assert passage.url == "https://docs.example.com/install.md#on-macos-apple-silicon"


def test_changing_the_anchor_style_or_url_base_re_renders_the_citations(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "install.md").write_text("# Install\n\n## On macOS (Apple silicon)\n\nUse the arm64 build of driftctl.\n")
    (docs / "notes.md").write_text("# Notes\n\nThe sync client keeps 30 days of history.\n")
    store = ChunkStore(str(tmp_path / "index"))
    indexer = Indexer(store, embedder)
    indexer.run([DocsRoot(docs, "docs", "https://docs.example.com/", anchors="github")])
    report = indexer.run([DocsRoot(docs, "docs", "https://docs.example.com/", anchors="none")])
    assert sorted(report.updated) == ["install.md", "notes.md"] and report.unchanged == 0
    retriever = HybridRetriever(store, embedder)
    assert retriever.search("arm64 build for apple silicon macs", k=1)[0].url == "https://docs.example.com/install.md"
    report = indexer.run([DocsRoot(docs, "docs", "https://help.example.com/docs/", anchors="sphinx")])
    assert sorted(report.updated) == ["install.md", "notes.md"]
    assert HybridRetriever(store, embedder).search("arm64 build for apple silicon macs", k=1)[0].url == \
        "https://help.example.com/docs/install.md#on-macos-apple-silicon"
    assert indexer.run([DocsRoot(docs, "docs", "https://help.example.com/docs/", anchors="sphinx")]).unchanged == 2
