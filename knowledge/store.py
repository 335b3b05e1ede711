"""The one module that touches LanceDB.

Queries always read the *live* version named by the newest row of a small manifest table;
a re-index writes new table versions and only then appends a manifest row. So a run that
dies midway leaves readers on the last good version, and the next run first restores the
table to it. A change of embedding model or chunking writes a fresh table and switches over
in the same single manifest commit.
"""

from __future__ import annotations

import functools
import json
import math
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import BTree, IvfPq

from bot.protocols import RetrievalUnavailable, RollbackRefused, disk_fault
from knowledge.documents import Chunk

T = TypeVar("T")
MANIFEST_TABLE = "index_manifest"
CHUNK_COLUMNS = ["chunk_id", "collection", "source", "title", "heading", "text", "url", "position"]
_DELETE_BATCH = 400
_KEEP_TABLES = 3  # chunk tables referenced by the newest manifests are never dropped

_MANIFEST_SCHEMA = pa.schema([
    ("seq", pa.int64()), ("table", pa.string()), ("version", pa.int64()),
    ("settings", pa.string()), ("built_at", pa.string()),
    ("documents", pa.int64()), ("chunks", pa.int64()), ("report", pa.string()),
])


def _chunk_schema(dims: int) -> pa.Schema:
    return pa.schema([
        ("chunk_id", pa.string()), ("collection", pa.string()), ("source", pa.string()),
        ("title", pa.string()), ("heading", pa.string()), ("text", pa.string()),
        ("search_text", pa.string()), ("url", pa.string()), ("content_hash", pa.string()),
        ("mtime", pa.float64()), ("position", pa.int32()),
        ("vector", pa.list_(pa.float32(), dims)),
    ])


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in(column: str, values: Iterable[Any]) -> str:
    return f"{column} IN (" + ", ".join(_quote(v) if isinstance(v, str) else str(int(v)) for v in values) + ")"


@dataclass(frozen=True)
class VectorIndexSettings:
    """When and how the chunk table gets an approximate vector index.

    Below `min_rows` chunks an exact scan over vectors held in memory is both faster and
    exact (43k chunks: ~5 ms, 66 MB). Past it the table is given LanceDB's IVF-PQ index:
    inverted lists (`partitions`; default LanceDB's own, ~8k rows each) of 48-byte product-
    quantised codes (384 dims / 8 per sub-vector), so serving holds ~50 MB per million chunks
    instead of 1.5 GB of raw vectors. A query scans the `nprobes` nearest lists and re-scores
    the `rescored` best codes (at least the number asked for) against the raw vectors read
    from disk, which keeps recall@10 against exact search >= 0.95
    (tests/benchmarks/bench_scale.py measures it).
    New rows are searchable at once (unindexed fragments are scanned exactly) and are folded
    into the index by the next re-index's optimise step; a changed model or chunking builds a
    new table with a freshly trained index.
    """

    min_rows: int = 100_000
    partitions: int = 0  # 0: LanceDB's own choice (~8k rows per list)
    sub_vectors: int = 0  # 0: dims / 8
    nprobes: int = 48
    rescored: int = 200

    def __post_init__(self) -> None:
        if self.min_rows < 1 or self.nprobes < 1 or self.rescored < 1:
            raise ValueError("vector index min_rows, nprobes and rescored must be >= 1")


@dataclass(frozen=True)
class LiveIndex:
    """What the manifest says queries should read."""

    seq: int
    table: str
    version: int
    settings: dict[str, Any]
    built_at: str
    documents: int
    chunks: int
    report: dict[str, Any]


@dataclass(frozen=True)
class IndexedDocument:
    collection: str
    source: str
    content_hash: str
    mtime: float
    chunks: int


class RollbackError(RollbackRefused):
    pass


class IndexDamaged(RetrievalUnavailable):
    """The index's files cannot be read (deleted, truncated, garbled). Only a rebuild from the
    docs heals it: `supportbot index` does that by itself on a local index."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri, self.reason = uri, reason
        super().__init__(f"the index at {uri} is damaged ({reason}); run `supportbot index` to rebuild it from the docs")


def _reading(method: Callable[..., T]) -> Callable[..., T]:
    """Any failure of LanceDB to read the index's own files becomes one IndexDamaged."""

    @functools.wraps(method)
    def guarded(self: ChunkStore, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except IndexDamaged:
            raise
        except (OSError, RuntimeError, ValueError, KeyError, pa.ArrowException) as err:
            if disk_fault(err):
                raise  # the machine's fault (full, read-only, not permitted), not the index's: never "healed"
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            reason = re.sub(r",?\s*/rustc/\S+", "", reason)  # where in Rust's library it surfaced: noise here
            raise IndexDamaged(self.uri, reason[:200]) from err

    return guarded


def collection_counts(indexed: Iterable[IndexedDocument]) -> dict[str, dict[str, int]]:
    """Documents and chunks per collection (docs source), from `ChunkStore.indexed_documents()`."""
    counts: dict[str, dict[str, int]] = {}
    for doc in indexed:
        entry = counts.setdefault(doc.collection, {"documents": 0, "chunks": 0})
        entry["documents"] += 1
        entry["chunks"] += doc.chunks
    return counts


class ChunkStore:
    def __init__(self, uri: str, storage_options: dict[str, str] | None = None,
                 refresh_seconds: float = 2.0, pinned: LiveIndex | None = None,
                 vector_index: VectorIndexSettings | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options or None
        self.refresh_seconds = refresh_seconds
        self._db = lancedb.connect(uri, storage_options=self.storage_options)
        self._pinned = pinned
        self._live: LiveIndex | None = None
        self._reader = None
        self._reader_cache: tuple[tuple[str, int], _Snapshot | _IndexedReader] | None = None
        self.vector_index = vector_index or VectorIndexSettings()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chunk-store")
        self._checked_at = 0.0

    # ----- manifest -------------------------------------------------------------------
    def _table_names(self) -> list[str]:
        result = self._db.list_tables()
        names = getattr(result, "tables", result)
        return list(names)

    @_reading
    def manifests(self) -> list[LiveIndex]:
        """Every committed index version, oldest first."""
        if MANIFEST_TABLE not in self._table_names():
            return []
        rows = self._db.open_table(MANIFEST_TABLE).to_arrow().to_pylist()
        rows.sort(key=lambda r: r["seq"])
        return [
            LiveIndex(r["seq"], r["table"], r["version"], json.loads(r["settings"]), r["built_at"],
                      r["documents"], r["chunks"], json.loads(r["report"]))
            for r in rows
        ]

    def view(self, version: LiveIndex) -> ChunkStore:
        """A read-only store that serves `version` (e.g. a staged one the eval gate tests)."""
        return ChunkStore(self.uri, self.storage_options, pinned=version, vector_index=self.vector_index)

    def live(self, refresh: bool = False) -> LiveIndex | None:
        if self._pinned is not None:
            return self._pinned
        now = time.monotonic()
        if refresh or self._live is None or now - self._checked_at > self.refresh_seconds:
            found = self.manifests()
            latest = found[-1] if found else None
            if latest != self._live:
                self._live, self._reader = latest, None
            self._checked_at = now
        return self._live

    def _live_table(self):
        live = self.live()
        if live is None:
            return None
        if self._reader is None:
            table = self._db.open_table(live.table)
            table.checkout(live.version)
            self._reader = table
        return self._reader

    # ----- reading --------------------------------------------------------------------
    @_reading
    def read_columns(self, columns: list[str], live: LiveIndex | None = None) -> pa.Table:
        """Columns of every row of the live (or given) version; vectors only if asked for."""
        live = live or self.live(refresh=True)
        if live is None:
            return pa.table({name: pa.array([], pa.string()) for name in columns})
        table = self._db.open_table(live.table)
        table.checkout(live.version)
        return table.to_lance().to_table(columns=columns)

    @_reading
    def indexed_documents(self, live: LiveIndex | None = None) -> dict[tuple[str, str], IndexedDocument]:
        live = live or self.live(refresh=True)
        if live is None:
            return {}
        data = self.read_columns(["collection", "source", "content_hash", "mtime"], live)
        docs: dict[tuple[str, str], IndexedDocument] = {}
        for row in data.to_pylist():
            key = (row["collection"], row["source"])
            seen = docs.get(key)
            docs[key] = IndexedDocument(row["collection"], row["source"], row["content_hash"], row["mtime"],
                                        (seen.chunks if seen else 0) + 1)
        return docs

    @_reading
    def candidates(self, vector: np.ndarray, text: str, limit: int,
                   collections: list[str] | None = None) -> list[dict[str, Any]]:
        """The top `limit` chunks by cosine and the top `limit` by BM25, merged; every row
        carries its exact cosine `similarity`, its `bm25` score (0 if not a text hit) and the
        cosine of its page's opening chunk, `page_similarity`."""
        reader = self._read()
        if reader is None:
            return []
        vector = np.asarray(vector, dtype=np.float32)
        # The full-text search runs beside the vector search (both release the GIL).
        text_hits = self._pool.submit(self._text_hits, text, limit, collections, reader.text_hit_columns)
        return reader.candidates(vector, text_hits, limit, collections)

    @_reading
    def neighbours(self, row: dict[str, Any], offsets: Iterable[int] = (-1, 1)) -> list[dict[str, Any]]:
        """The chunks just before and after `row` in its document that belong to the same
        section (a section cut into chunks is read whole around its best chunk)."""
        reader = self._read()
        if reader is None:
            return []
        return [other for other in reader.neighbours(row, [row["position"] + o for o in offsets])
                if other["heading"] == row["heading"]]

    @_reading
    def vector_index_state(self) -> dict[str, Any] | None:
        """The live version's vector index (type, rows in it, rows not yet folded in), or None."""
        table = self._live_table()
        if table is None or not _has_vector_index(table):
            return None
        name = next(index.name for index in table.list_indices() if index.columns == ["vector"])
        stats = table.index_stats(name)
        return {"type": stats.index_type, "indexed_rows": stats.num_indexed_rows,
                "unindexed_rows": stats.num_unindexed_rows}

    @property
    def search_mode(self) -> str:
        """"exact" (every vector in memory) or the vector index the live version is searched with."""
        reader = self._read()
        return reader.mode if reader is not None else "empty"

    def _text_hits(self, text: str, limit: int, collections: list[str] | None, columns: list[str]) -> pa.Table:
        table = self._live_table()
        empty = pa.table({"chunk_id": pa.array([], pa.string()), "_score": pa.array([], pa.float32())})
        if table is None or not text.strip():
            return empty
        query = table.search(text, query_type="fts", fts_columns="search_text").limit(limit)
        if collections:
            query = query.where(_in("collection", collections), prefilter=True)
        try:
            return query.select(columns + ["_score"]).to_arrow()
        except ValueError as err:  # an empty index has no full-text index to search
            if "INVERTED index" in str(err):
                return empty
            raise

    def _read(self) -> _Snapshot | _IndexedReader | None:
        """How the live version is read: below `vector_index.min_rows` chunks every vector sits
        in memory (exact cosine in a few ms); past it the table's own vector index is queried
        and nothing but the index's cache is held."""
        live = self.live()
        if live is None:
            return None
        if self._reader_cache is None or self._reader_cache[0] != (live.table, live.version):
            table = self._live_table()
            if live.chunks >= self.vector_index.min_rows and _has_vector_index(table):
                reader: _Snapshot | _IndexedReader = _IndexedReader(table, self.vector_index)
            else:
                reader = _Snapshot(self.read_columns(CHUNK_COLUMNS + ["vector"], live))
            self._reader_cache = ((live.table, live.version), reader)
        return self._reader_cache[1]

    # ----- writing --------------------------------------------------------------------
    @_reading
    def begin(self, settings: dict[str, Any], dims: Callable[[], int]) -> tuple[IndexWriter, str | None]:
        """Open a writer on top of the live version; returns it and the reason for a full rebuild.
        `dims` is asked only when a new table is made: knowing it means loading the embedding
        model (seconds), which a re-index of unchanged docs never needs."""
        live = self.live(refresh=True)
        rebuild_reason = None
        if live is None:
            rebuild_reason = "no index yet"
        elif live.settings != settings:
            changed = sorted(k for k in set(live.settings) | set(settings) if live.settings.get(k) != settings.get(k))
            rebuild_reason = "index settings changed (" + ", ".join(
                f"{k}: {live.settings.get(k)!r} -> {settings.get(k)!r}" for k in changed) + ")"
        if rebuild_reason:
            seq = (live.seq if live else 0) + 1
            name = f"chunks_{seq}_{int(time.time())}"
            table = self._db.create_table(name, schema=_chunk_schema(dims()), mode="overwrite")
        else:
            assert live is not None
            table = self._db.open_table(live.table)
            if table.version != live.version:
                table.restore(live.version)  # drop whatever an interrupted run left behind
        return IndexWriter(self, table, settings, live), rebuild_reason

    def _staged(self, table, settings: dict[str, Any]) -> LiveIndex:
        """The table's current version described as a candidate, not yet in the manifest."""
        previous = self.live(refresh=True)
        counts = table.to_lance().to_table(columns=["collection", "source"])
        documents = len({(r["collection"], r["source"]) for r in counts.to_pylist()})
        return LiveIndex((previous.seq if previous else 0) + 1, table.name, table.version, settings,
                         datetime.now(timezone.utc).isoformat(timespec="seconds"), documents, counts.num_rows, {})

    def _commit(self, staged: LiveIndex, report: dict[str, Any]) -> LiveIndex:
        previous = self.live(refresh=True)
        row = {
            "seq": (previous.seq if previous else 0) + 1, "table": staged.table, "version": staged.version,
            "settings": json.dumps(staged.settings, sort_keys=True), "built_at": staged.built_at,
            "documents": staged.documents, "chunks": staged.chunks, "report": json.dumps(report),
        }
        self._append_manifest(row)
        self._drop_unreferenced_tables()
        return self.live(refresh=True)  # type: ignore[return-value]

    def rollback(self, seq: int | None, settings: dict[str, Any]) -> tuple[LiveIndex, LiveIndex]:
        """Make an earlier version live again (default: the one before the live one) by
        appending a manifest row that points at it. Returns (now live, restored from)."""
        versions = self.manifests()
        if not versions:
            raise RollbackError("there is no index yet")
        live = versions[-1]
        if seq is None:
            if len(versions) < 2:
                raise RollbackError(f"v{live.seq} is the only index version; there is nothing to roll back to")
            target = versions[-2]
        else:
            found = [m for m in versions if m.seq == seq]
            if not found:
                raise RollbackError(f"no index version v{seq}; versions are v{versions[0].seq}..v{live.seq}")
            target = found[0]
        if (target.table, target.version) == (live.table, live.version):
            raise RollbackError(f"v{target.seq} is what is live already (v{live.seq})")
        problem = self.unavailable_reason(target, settings)
        if problem:
            raise RollbackError(f"cannot roll back to v{target.seq}: {problem}")
        report = {**target.report, "rollback_of": target.seq}
        row = {
            "seq": live.seq + 1, "table": target.table, "version": target.version,
            "settings": json.dumps(target.settings, sort_keys=True), "built_at": target.built_at,
            "documents": target.documents, "chunks": target.chunks, "report": json.dumps(report),
        }
        self._append_manifest(row)
        return self.live(refresh=True), target  # type: ignore[return-value]

    def unavailable_reason(self, version: LiveIndex, settings: dict[str, Any]) -> str | None:
        """Why a recorded version cannot be served any more, or None if it can."""
        if version.settings != settings:
            return ("it was built with other index settings (embedding model, chunking or loaders) "
                    "than this bot uses")
        if version.table not in self._table_names():
            return "its table was dropped (only the newest index tables are kept)"
        table = self._db.open_table(version.table)
        if version.version not in {v["version"] for v in table.list_versions()}:
            return "its data was compacted away (versions are kept for 30 days)"
        return None

    def reset_damaged(self) -> None:
        """Remove every table of a damaged local index so the next run rebuilds it from the
        docs. Never on an object store, where a read failure may be the network's."""
        if "://" in self.uri:
            raise IndexDamaged(self.uri, "on object storage it is never removed automatically; check the bucket, "
                                         "or delete the index prefix to rebuild")
        root = Path(self.uri)
        for folder in root.glob("*.lance"):
            shutil.rmtree(folder)
        self._live, self._reader, self._reader_cache = None, None, None
        self._db = lancedb.connect(self.uri, storage_options=self.storage_options)

    def _append_manifest(self, row: dict[str, Any]) -> None:
        if MANIFEST_TABLE in self._table_names():
            self._db.open_table(MANIFEST_TABLE).add([row])
        else:
            self._db.create_table(MANIFEST_TABLE, data=pa.Table.from_pylist([row], schema=_MANIFEST_SCHEMA))

    def _drop_unreferenced_tables(self) -> None:
        keep = {m.table for m in self.manifests()[-_KEEP_TABLES:]}
        for name in self._table_names():
            if name.startswith("chunks_") and name not in keep:
                self._db.drop_table(name)


def _has_vector_index(table) -> bool:
    return any(index.columns == ["vector"] for index in table.list_indices())


class _Snapshot:
    """Exact search: the live version's vectors and chunk fields in memory."""

    mode = "exact"
    text_hit_columns = ["chunk_id"]

    def __init__(self, table: pa.Table) -> None:
        n = table.num_rows
        vectors = table.column("vector").combine_chunks()
        dims = vectors.type.list_size
        self.vectors = np.asarray(vectors.flatten(), dtype=np.float32).reshape(n, dims)
        self.columns = {name: table.column(name).combine_chunks() for name in CHUNK_COLUMNS}
        self.collections = np.asarray(self.columns["collection"].to_pylist(), dtype=object)
        self.index_of = {chunk_id: i for i, chunk_id in enumerate(self.columns["chunk_id"].to_pylist())}
        self.position_of = {key: i for i, key in enumerate(zip(
            self.columns["collection"].to_pylist(), self.columns["source"].to_pylist(),
            self.columns["position"].to_pylist()))}
        # Each chunk's page opening chunk (position 0), whose cosine says what the page is about.
        self.page_of = np.asarray([self.position_of.get((c, src, 0), i) for i, (c, src) in enumerate(zip(
            self.columns["collection"].to_pylist(), self.columns["source"].to_pylist()))], dtype=np.int64)

    def candidates(self, vector: np.ndarray, text_hits: Future[pa.Table], limit: int,
                   collections: list[str] | None) -> list[dict[str, Any]]:
        sims = self.similarities(vector, collections)
        rows: dict[int, dict[str, Any]] = {}
        for index in self.top(sims, limit):
            rows[index] = self.row(index, float(sims[index]), 0.0)
        hits = text_hits.result()
        for chunk_id, bm25 in zip(hits.column("chunk_id").to_pylist(), hits.column("_score").to_pylist()):
            index = self.index_of.get(chunk_id)
            if index is None:
                continue
            if index in rows:
                rows[index]["bm25"] = bm25
            else:
                rows[index] = self.row(index, float(sims[index]), bm25)
        for index, row in rows.items():
            row["page_similarity"] = float(sims[self.page_of[index]])
        return list(rows.values())

    def neighbours(self, row: dict[str, Any], positions: list[int]) -> list[dict[str, Any]]:
        found = []
        for position in positions:
            index = self.position_of.get((row["collection"], row["source"], position))
            if index is not None:
                found.append(self.row(index, 0.0, 0.0))
        return found

    def similarities(self, vector: np.ndarray, collections: list[str] | None) -> np.ndarray:
        sims = self.vectors @ np.asarray(vector, dtype=np.float32)
        if collections:
            sims = np.where(np.isin(self.collections, collections), sims, -np.inf)
        return sims

    @staticmethod
    def top(sims: np.ndarray, limit: int) -> list[int]:
        if sims.size == 0:
            return []
        limit = min(limit, sims.size)
        top = np.argpartition(-sims, limit - 1)[:limit]
        return [int(i) for i in top if np.isfinite(sims[i])]

    def row(self, index: int, similarity: float, bm25: float) -> dict[str, Any]:
        row = {name: values[index].as_py() for name, values in self.columns.items()}
        row["similarity"], row["bm25"] = similarity, bm25
        return row


class _IndexedReader:
    """Approximate search through the table's vector index; only the index cache is held.
    Rows come back with their raw vectors so every cosine the fusion sees is exact."""

    mode = "ivf_pq"
    text_hit_columns = CHUNK_COLUMNS + ["vector"]

    def __init__(self, table, settings: VectorIndexSettings) -> None:
        self.table = table
        self.settings = settings

    def candidates(self, vector: np.ndarray, text_hits: Future[pa.Table], limit: int,
                   collections: list[str] | None) -> list[dict[str, Any]]:
        refine = max(1, math.ceil(self.settings.rescored / limit))
        query = (self.table.search(vector, vector_column_name="vector").distance_type("cosine")
                 .nprobes(self.settings.nprobes).refine_factor(refine).limit(limit))
        if collections:
            query = query.where(_in("collection", collections), prefilter=True)
        rows: dict[str, dict[str, Any]] = {}
        for row in _scored_rows(query.select(CHUNK_COLUMNS + ["vector"]).to_arrow(), vector):
            rows[row["chunk_id"]] = row
        for row in _scored_rows(text_hits.result(), vector):
            if row["chunk_id"] in rows:
                rows[row["chunk_id"]]["bm25"] = row["bm25"]
            else:
                rows[row["chunk_id"]] = row
        self._add_page_similarities(vector, list(rows.values()))
        return list(rows.values())

    def _add_page_similarities(self, vector: np.ndarray, rows: list[dict[str, Any]]) -> None:
        sources = {row["source"] for row in rows}
        pages: dict[tuple[str, str], float] = {}
        if sources:
            found = (self.table.search().where(f"position = 0 AND {_in('source', sources)}")
                     .select(["collection", "source", "vector"]).limit(len(sources) * 4).to_arrow())
            for page in _scored_rows(found, vector):
                pages[(page["collection"], page["source"])] = page["similarity"]
        for row in rows:
            row["page_similarity"] = pages.get((row["collection"], row["source"]), row["similarity"])

    def neighbours(self, row: dict[str, Any], positions: list[int]) -> list[dict[str, Any]]:
        if not positions:
            return []
        where = (f"collection = {_quote(row['collection'])} AND source = {_quote(row['source'])} "
                 f"AND {_in('position', positions)}")
        found = self.table.search().where(where).select(CHUNK_COLUMNS).limit(len(positions)).to_arrow()
        by_position = {r["position"]: r for r in found.to_pylist()}
        return [{**by_position[p], "similarity": 0.0, "bm25": 0.0} for p in positions if p in by_position]


def _scored_rows(found: pa.Table, vector: np.ndarray) -> list[dict[str, Any]]:
    """Rows of a LanceDB result with their exact cosine to `vector` (from the raw vectors, in
    one matrix product) and their BM25 `_score` when it is a full-text result."""
    if not len(found):
        return []
    vectors = found.column("vector").combine_chunks()
    sims = np.asarray(vectors.flatten(), dtype=np.float32).reshape(len(found), -1) @ vector
    scores = found.column("_score").to_pylist() if "_score" in found.column_names else [0.0] * len(found)
    rows = found.drop_columns([c for c in ("vector", "_score", "_distance") if c in found.column_names]).to_pylist()
    for row, similarity, bm25 in zip(rows, sims, scores):
        row["similarity"], row["bm25"] = float(similarity), bm25
    return rows


class IndexWriter:
    """Stages changes as new table versions; nothing is visible until `commit`."""

    def __init__(self, store: ChunkStore, table, settings: dict[str, Any], base: LiveIndex | None) -> None:
        self.store = store
        self.table = table
        self.settings = settings
        self.base = base
        self.changed = False

    def delete_documents(self, keys: Iterable[tuple[str, str]]) -> None:
        by_collection: dict[str, list[str]] = {}
        for collection, source in keys:
            by_collection.setdefault(collection, []).append(source)
        for collection, sources in by_collection.items():
            for start in range(0, len(sources), _DELETE_BATCH):
                batch = ", ".join(_quote(s) for s in sources[start:start + _DELETE_BATCH])
                self.table.delete(f"collection = {_quote(collection)} AND source IN ({batch})")
                self.changed = True

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if not chunks:
            return
        columns = {
            "chunk_id": [c.chunk_id for c in chunks], "collection": [c.collection for c in chunks],
            "source": [c.source for c in chunks], "title": [c.title for c in chunks],
            "heading": [c.heading for c in chunks], "text": [c.text for c in chunks],
            "search_text": [c.search_text for c in chunks], "url": [c.url for c in chunks],
            "content_hash": [c.content_hash for c in chunks], "mtime": [c.mtime for c in chunks],
            "position": [c.position for c in chunks],
        }
        schema = self.table.schema
        dims = schema.field("vector").type.list_size
        arrays = [pa.array(columns[name], type=schema.field(name).type) for name in columns]
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        arrays.append(pa.FixedSizeListArray.from_arrays(flat, dims))
        self.table.add(pa.Table.from_arrays(arrays, schema=schema))
        self.changed = True

    @property
    def has_changes(self) -> bool:
        return self.changed or self.base is None or self.base.table != self.table.name

    def stage(self) -> LiveIndex:
        """Index full text and compact: the finished version, readable through
        `store.view()` but not live. With no changes it is the live version itself."""
        if not self.has_changes:
            assert self.base is not None
            return self.base
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            rows = self.table.count_rows()
            if rows > 0:
                self.table.create_fts_index("search_text", replace=True)
            if rows >= self.store.vector_index.min_rows and not _has_vector_index(self.table):
                self._create_vector_index()
        # Compacts, and folds rows added since the vector index was trained into it.
        self.table.optimize(cleanup_older_than=timedelta(days=30))
        return self.store._staged(self.table, self.settings)

    def _create_vector_index(self) -> None:
        settings = self.store.vector_index
        dims = self.table.schema.field("vector").type.list_size
        self.table.create_index("vector", config=IvfPq(
            distance_type="cosine", num_partitions=settings.partitions or None,
            num_sub_vectors=settings.sub_vectors or max(1, dims // 8)))
        # Page and neighbour look-ups filter on these; without an index each one scans the table.
        self.table.create_index("source", config=BTree())
        self.table.create_index("position", config=BTree())

    def commit(self, staged: LiveIndex, report: dict[str, Any]) -> LiveIndex:
        """Make the staged version live with one manifest append."""
        if not self.has_changes:
            return staged  # nothing changed: no new version, no manifest row
        return self.store._commit(staged, report)

    def discard(self) -> None:
        """Leave the live version as it is; a fresh table built for a full rebuild is dropped."""
        if self.base is None or self.base.table != self.table.name:
            self.store._db.drop_table(self.table.name)
