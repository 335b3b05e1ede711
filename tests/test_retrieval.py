"""Hybrid retrieval: exact terms that vector search alone misses, one passage per document."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.documents import DocsRoot
from knowledge.embedding import Embedder
from knowledge.indexer import Indexer
from knowledge.retrieval import HybridRetriever, RetrievalSettings
from knowledge.store import ChunkStore
from tests.helpers import write_docs

CORPUS = {
    "errors/overview.md": "# Error messages\n\nWhen sync fails the app shows an error message with a code. "
                          "Most error codes clear after a restart of the app.\n",
    "errors/network.md": "# Network errors\n\nAn error about the network means the app cannot reach the server. "
                         "Check your proxy and firewall, then retry.\n",
    "errors/disk.md": "# Disk errors\n\nA disk error appears when the sync folder is full or read-only.\n",
    "errors/sign-in.md": "# Sign-in errors\n\nIf sign-in fails with an error, reset your password.\n",
    "release-notes/4.2.1.md": "# Release notes 4.2.1\n\n## Changes\n\n- Faster start-up on large folders.\n"
                              "- New dark theme for the tray menu.\n- Selective sync remembers collapsed folders.\n"
                              "- Uploads no longer stall on resume (QX-7731).\n- Updated translations for "
                              "Portuguese and Korean.\n- The installer is 12 MB smaller.\n",
    "errors/codes.md": "# What an error code means\n\nEvery error code names the part of the app that failed. "
                       "Look up the meaning of an error code in the list of error messages, then follow its fix.\n",
    "billing/plans.md": "# Plans\n\nTeam costs 8 dollars per user per month; Business costs 15.\n",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> ChunkStore:
    root = tmp_path_factory.mktemp("retrieval")
    docs = write_docs(root / "docs", CORPUS)
    store = ChunkStore(str(root / "index"))
    Indexer(store, embedder).run([DocsRoot(docs)])
    return store


def test_exact_error_code_is_found_by_hybrid_but_missed_by_vector_search_alone(
    store: ChunkStore, embedder: Embedder
) -> None:
    query = "What does error QX-7731 mean?"
    vector_only = HybridRetriever(store, embedder, RetrievalSettings(text_weight=0.0, page_weight=0.0))
    hybrid = HybridRetriever(store, embedder)
    assert vector_only.search(query, k=1)[0].source != "release-notes/4.2.1.md"
    top = hybrid.search(query, k=1)[0]
    assert top.source == "release-notes/4.2.1.md"
    assert top.exact_match and top.relevant


def test_results_are_one_passage_per_document_best_first(store: ChunkStore, embedder: Embedder) -> None:
    results = HybridRetriever(store, embedder).search("error", k=10)
    sources = [p.source for p in results]
    assert len(sources) == len(set(sources))
    assert [p.score for p in results] == sorted((p.score for p in results), reverse=True)


def test_unrelated_question_is_not_relevant(store: ChunkStore, embedder: Embedder) -> None:
    results = HybridRetriever(store, embedder).search("Who painted the Mona Lisa?", k=3)
    assert results and not any(p.relevant for p in results)


def test_empty_query_and_empty_index_return_nothing(tmp_path: Path, embedder: Embedder) -> None:
    empty = ChunkStore(str(tmp_path / "none"))
    assert HybridRetriever(empty, embedder).search("anything", k=3) == []
    assert HybridRetriever(empty, embedder).search("   ", k=3) == []
