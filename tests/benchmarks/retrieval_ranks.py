"""The ranked sources of one corpus's questions, for bench_retrieval --baseline: run as a
script with another commit's tree first on PYTHONPATH, so that commit's loaders, chunking
and retriever index and rank the docs. It imports only names every version since the
hybrid retriever has kept (DocsRoot, Embedder, Indexer, HybridRetriever, ChunkStore).

Run: python tests/benchmarks/retrieval_ranks.py INDEX_DIR DOCS_DIR QUESTIONS.json
(questions: a JSON list of strings); prints a JSON list of each question's top-10 sources.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    from knowledge.documents import DocsRoot
    from knowledge.embedding import Embedder
    from knowledge.indexer import Indexer
    from knowledge.retrieval import HybridRetriever
    from knowledge.store import ChunkStore

    index, docs, questions_file = sys.argv[1:4]
    with open(questions_file, encoding="utf-8") as handle:
        questions = json.load(handle)
    store, embedder = ChunkStore(index), Embedder()
    Indexer(store, embedder).run([DocsRoot(docs)])
    retriever = HybridRetriever(store, embedder)
    print(json.dumps([[p.source for p in retriever.search(q, k=10)] for q in questions]))


if __name__ == "__main__":
    main()
