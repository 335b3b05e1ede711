"""Past `vector_index_min_chunks` the store searches through LanceDB's IVF-PQ index instead
of holding every vector in memory: same passages as the exact scan, new rows found at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.documents import DocsRoot
from knowledge.embedding import Embedder
from knowledge.indexer import Indexer
from knowledge.retrieval import HybridRetriever
from knowledge.store import ChunkStore, VectorIndexSettings
from tests.helpers import write_docs

TOPICS = ["printer", "router", "thermostat", "camera", "speaker", "doorbell", "scanner", "projector",
          "keyboard", "monitor", "headset", "charger", "drone", "smartwatch", "tablet", "e-reader",
          "dishwasher", "kettle", "vacuum", "lamp"]
TASKS = ["Pair it with the app", "Reset it to factory settings", "Update the firmware", "Clean it safely",
         "Fix a blinking red light", "Replace the battery", "Mount it on a wall", "Check the warranty",
         "Connect it to Wi-Fi", "Turn on the energy saver", "Change the display language", "Read the error log",
         "Set a schedule", "Share it with family", "Calibrate the sensor", "Move it to another room"]


def _manual(topic: str) -> str:
    sections = [f"# The {topic} manual\n\nThis manual explains how to set up and care for your {topic}.\n"]
    for n, task in enumerate(TASKS):
        sections.append(f"## {task}\n\nTo {task.lower()} on the {topic}, open the {topic} menu, choose "
                        f"step {n + 1} and hold the {topic} button for {n + 2} seconds until it beeps.\n")
    return "\n".join(sections)


CORPUS = {f"devices/{topic}.md": _manual(topic) for topic in TOPICS}
QUERIES = ["how do I reset the router", "thermostat firmware update", "my doorbell light keeps blinking red",
           "put the projector on the wall", "vacuum battery replacement", "drone warranty",
           "change language on the e-reader", "share the kettle with my family"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[ChunkStore, ChunkStore, Path]:
    root = tmp_path_factory.mktemp("vector-index")
    docs = write_docs(root / "docs", CORPUS)
    exact = ChunkStore(str(root / "exact"))
    indexed = ChunkStore(str(root / "indexed"), vector_index=VectorIndexSettings(min_rows=100))
    for store in (exact, indexed):
        Indexer(store, embedder).run([DocsRoot(docs)])
    return exact, indexed, docs


def test_a_large_index_is_searched_through_ivf_pq_and_returns_what_the_exact_scan_returns(
    stores: tuple[ChunkStore, ChunkStore, Path], embedder: Embedder
) -> None:
    exact, indexed, _ = stores
    chunks = exact.live().chunks
    assert chunks >= 300  # PQ codebooks need 256 training rows
    assert exact.search_mode == "exact" and exact.vector_index_state() is None
    assert indexed.search_mode == "ivf_pq"
    assert indexed.vector_index_state() == {"type": "IVF_PQ", "indexed_rows": chunks, "unindexed_rows": 0}
    for query in QUERIES:
        want = HybridRetriever(exact, embedder).search(query, k=3)
        got = HybridRetriever(indexed, embedder).search(query, k=3)
        # Every list is probed and every candidate re-scored on its raw vector: the same pages,
        # the same passages (neighbour and page look-ups go through the table's scalar indices).
        assert [(p.source, p.text, p.similarity) for p in got] == [(p.source, p.text, p.similarity) for p in want]


def test_a_document_added_after_the_index_was_trained_is_found_and_folded_into_the_index(
    stores: tuple[ChunkStore, ChunkStore, Path], embedder: Embedder
) -> None:
    exact, indexed, docs = stores
    write_docs(docs, {"devices/aquarium.md": "# The aquarium manual\n\n## Change the water\n\nSiphon a quarter "
                                             "of the aquarium water every week and refill it with dechlorinated water.\n"})
    before = indexed.live().chunks
    report = Indexer(indexed, embedder).run([DocsRoot(docs)])
    assert report.chunks_embedded == 1
    top = HybridRetriever(indexed, embedder).search("how often should I swap the fish tank water", k=1)[0]
    assert top.source == "devices/aquarium.md" and top.relevant
    assert indexed.search_mode == "ivf_pq"
    assert indexed.vector_index_state() == {"type": "IVF_PQ", "indexed_rows": before + 1, "unindexed_rows": 0}
