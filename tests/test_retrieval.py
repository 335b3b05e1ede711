"""Hybrid retrieval: exact terms that vector search alone misses, one passage per document."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.documents import DocsRoot
from knowledge.embedding import Embedder
from knowledge.indexer import Indexer
from knowledge.retrieval import HybridRetriever, RetrievalSettings, lexical_coverage
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


def test_bm25_share_follows_how_much_of_the_question_the_best_lexical_hits_hold() -> None:
    rows = [
        {"title": "Restore deleted files", "heading": "Trash", "text": "Deleted files stay in the trash for 30 days.",
         "bm25": 7.0},
        {"title": "Folders", "heading": "", "text": "Pick the folders that sync.", "bm25": 2.0},
        {"title": "Plans", "heading": "", "text": "Team costs 8 dollars.", "bm25": 0.0},
    ]
    # "restore", "deleted", "files": all three in the first hit.
    assert lexical_coverage("How do I restore deleted files?", rows, hits=3) == 1.0
    # "emptied", "bin", "photos", "back": none is in a text hit; "plans" is not a text hit at all.
    assert lexical_coverage("emptied the bin, can I get my photos back?", rows, hits=3) == 0.0
    # "folders" (hit 2) and "trash" (hit 1), but never both in one hit: the best single hit counts.
    assert lexical_coverage("trash folders", rows, hits=3) == 0.5
    assert lexical_coverage("trash folders", rows, hits=1) == 0.5
    assert lexical_coverage("the and of", rows, hits=3) == 0.0  # nothing to measure: meaning decides


def test_a_paraphrase_finds_its_page_where_bm25_alone_is_pulled_to_the_shared_words(
    tmp_path: Path, embedder: Embedder
) -> None:
    docs = write_docs(tmp_path / "docs", {
        "files/restore.md": "# Restore deleted files\n\nDeleted items stay in the trash for 30 days. Open the web "
                            "app, choose Trash and select Restore to put an item back where it was.\n",
        "files/folders.md": "# Choose which folders sync\n\nSelective sync lets you pick the folders that sync to "
                            "this computer. Folders you skip are removed from this computer only; the files "
                            "in those folders stay in your account and you can get them back by syncing the "
                            "folders again.\n",
        "billing/plans.md": "# Plans\n\nTeam costs 8 dollars per user per month; Business costs 15.\n",
    })
    store = ChunkStore(str(tmp_path / "index"))
    Indexer(store, embedder).run([DocsRoot(docs)])
    question = "I threw some files away by mistake, how do I get them back"
    candidates = store.candidates(embedder.embed_query(question), question, 100)
    assert max(candidates, key=lambda row: row["bm25"])["source"] == "files/folders.md"  # "files", "get", "them", "back"
    assert lexical_coverage(question, candidates, 3) < 0.5  # so BM25 gets under half its usual share
    assert HybridRetriever(store, embedder).search(question, k=1)[0].source == "files/restore.md"


def test_score_documents_is_the_order_search_returns_with_every_candidate_page(
    store: ChunkStore, embedder: Embedder
) -> None:
    """A second stage (bench_rerank) reads every candidate page's fused chunks: the same
    scores and order `search` answers with, one entry per page, each page's chunks best first."""
    retriever = HybridRetriever(store, embedder)
    query = "What does an error code mean?"
    rows = store.candidates(embedder.embed_query(query), query, retriever.settings.candidates)
    documents = retriever.score_documents(query, rows)
    assert len(documents) == len({(r["collection"], r["source"]) for r in rows}) == len(CORPUS)
    for scored in documents:
        assert [score for score, _ in scored] == sorted((score for score, _ in scored), reverse=True)
        assert len({row["source"] for _, row in scored}) == 1
    searched = retriever.search(query, k=len(CORPUS))
    assert [p.source for p in searched] == [scored[0][1]["source"] for scored in documents]
    assert [p.score for p in searched] == [round(scored[0][0], 4) for scored in documents]
    assert searched[0].source == "errors/codes.md"
