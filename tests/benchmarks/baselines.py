"""Naive retrieval baselines for the benchmark: fixed 200-word chunks with no structure,
searched by vector alone or by BM25 alone and ranked chunk by chunk. They live in a LanceDB
table of their own, apart from the product's store. The words are the text the product's own
loaders extract (so an HTML page is its prose, not its markup): the baseline differs in
chunking and search only."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa

from knowledge.documents import DocsRoot
from knowledge.embedding import Embedder
from knowledge.loaders import LoadError, load_file
from knowledge.sources import iter_source_files
from knowledge.store import ChunkStore

WORDS = 200


def chunk_texts(store: ChunkStore) -> list[str]:
    """The exact texts the product embedded (title line + chunk), read back from the index."""
    return store.read_columns(["search_text"]).column("search_text").to_pylist()


@dataclass
class FixedChunkIndex:
    table: object
    embedder: Embedder
    count: int

    def search(self, question: str, mode: str, k: int) -> list[str]:
        if mode == "vector":  # each asks for its score column: Lance warns on every search that leaves it out
            query = self.table.search(self.embedder.embed_query(question)).distance_type("cosine")
            columns = ["source", "_distance"]
        else:
            query = self.table.search(question, query_type="fts", fts_columns="text")
            columns = ["source", "_score"]
        return [r["source"] for r in query.limit(k).select(columns).to_list()]


def build_fixed_chunks(folder: Path, docs: Path, embedder: Embedder, reuse: bool = False) -> FixedChunkIndex:
    """Chunk and embed `docs` into `folder`; with `reuse`, a table already there is kept."""
    db = lancedb.connect(str(folder))
    if reuse and "fixed" in getattr(db.list_tables(), "tables", []):
        table = db.open_table("fixed")
        return FixedChunkIndex(table, embedder, table.count_rows())
    sources, texts = [], []
    for source, path in iter_source_files(DocsRoot(docs)):
        try:
            loaded, _ = load_file(path, source, ["utf-8"], 50_000_000)
        except LoadError:
            continue
        words = " ".join([loaded.title] + [s.text for s in loaded.sections]).split()
        for start in range(0, len(words), WORDS):
            sources.append(source)
            texts.append(" ".join(words[start:start + WORDS]))
    vectors = embedder.embed_documents(texts)
    dims = vectors.shape[1]
    data = pa.table({
        "source": sources, "text": texts,
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1).astype(np.float32)), dims),
    })
    table = db.create_table("fixed", data=data, mode="overwrite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        table.create_fts_index("text", replace=True)
    return FixedChunkIndex(table, embedder, len(texts))
