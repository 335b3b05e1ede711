"""The knowledge side of the bot, built from settings: the chunk store, the embedder, the
indexer and the retriever, and which docs folders an index is built from.

Each part is built on first use (the embedder loads a model; `supportbot status` must not)
unless it was handed in: tests and benchmarks pass the session's loaded embedder, or a
store on another URI, through the constructor.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.app.config import Settings
from bot.protocols import RetrievalUnavailable

if TYPE_CHECKING:
    from knowledge.documents import DocsRoot
    from knowledge.embedding import Embedder
    from knowledge.indexer import Indexer, LoaderSettings
    from knowledge.retrieval import HybridRetriever
    from knowledge.store import ChunkStore

SAMPLE_DOCS_NAME = "sample-docs"


def bundled_sample_docs() -> Path:
    return Path(str(resources.files("knowledge") / "sample_docs"))


class KnowledgeParts:
    def __init__(self, settings: Settings, *, store: ChunkStore | None = None, embedder: Embedder | None = None,
                 retriever: HybridRetriever | None = None) -> None:
        self.settings = settings
        self._store = store
        self._embedder = embedder
        self._retriever = retriever
        self._indexer: Indexer | None = None

    @property
    def store(self) -> ChunkStore:
        if self._store is None:
            from knowledge.store import ChunkStore, VectorIndexSettings

            uri = self.settings.index_uri
            if "://" not in uri:
                Path(uri).mkdir(parents=True, exist_ok=True)
            cfg = self.settings.index
            self._store = ChunkStore(uri, storage_options=cfg.storage_options, vector_index=VectorIndexSettings(
                min_rows=cfg.vector_index_min_chunks, nprobes=cfg.vector_index_nprobes,
                rescored=cfg.vector_index_rescored))
        return self._store

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from knowledge.embedding import Embedder

            cfg = self.settings.embedding
            self._embedder = Embedder(cfg.model, batch_size=cfg.batch_size, dtype=cfg.dtype)
        return self._embedder

    def loader_settings(self) -> LoaderSettings:
        """How files are read (the indexer's, and `status`'s count of what changed since)."""
        from knowledge.indexer import LoaderSettings

        cfg = self.settings.index
        return LoaderSettings(int(cfg.max_file_mb * 1_000_000), tuple(cfg.encodings), cfg.max_text_chars)

    @property
    def indexer(self) -> Indexer:
        if self._indexer is None:
            from knowledge.chunking import ChunkSettings
            from knowledge.indexer import Indexer

            cfg = self.settings.index
            self._indexer = Indexer(
                self.store, self.embedder, ChunkSettings(cfg.chunk_max_tokens, cfg.chunk_overlap_tokens),
                self.loader_settings(),
            )
        return self._indexer

    @property
    def retriever(self) -> HybridRetriever:
        if self._retriever is None:
            self._retriever = self.retriever_over(self.store)
        return self._retriever

    def retriever_over(self, store: Any) -> HybridRetriever:
        """A retriever with the configured settings over `store` (the live one, or a view
        of a staged or older version for the eval gate)."""
        from knowledge.retrieval import HybridRetriever, RetrievalSettings

        cfg = self.settings.retrieval
        return HybridRetriever(store, self.embedder, RetrievalSettings(
            candidates=cfg.candidates, text_weight=cfg.text_weight, page_weight=cfg.page_weight,
            min_similarity=cfg.min_similarity, min_covered_similarity=cfg.min_covered_similarity,
            identifier_boost=cfg.identifier_boost))

    def source_folder(self, source: Any) -> Path:
        """Where a configured docs source is read from: its path, its git checkout, or the
        mirror of its website's pages."""
        if source.url:
            from knowledge.web_sources import pages_folder

            return pages_folder(self.settings.sources_dir / source.name)
        if not source.git:
            if source.path.suffix.lower() == ".zip":  # an export as downloaded: its unpacked copy
                return self.settings.sources_dir / source.name
            return source.path
        return self.settings.sources_dir / source.name / (source.path or "")

    def _root(self, source: Any) -> DocsRoot:
        from knowledge.documents import DocsRoot

        if source.url:
            from knowledge.web_sources import site_pages

            return DocsRoot(self.source_folder(source), source.name, anchors="none",
                            page_urls=site_pages(self.settings.sources_dir / source.name))
        return DocsRoot(self.source_folder(source), source.name, source.url_base, list(source.exclude),
                        anchors=source.anchors)

    def docs_roots(self, override: list[Path] | None = None) -> list[DocsRoot]:
        """Explicit folders, else configured sources (git ones at their checkout), else those
        the live index was built from, else the bundled sample docs."""
        from knowledge.documents import DocsRoot

        if override:
            return unique_names([DocsRoot(Path(p)) for p in override])
        if self.settings.docs:
            return unique_names([self._root(d) for d in self.settings.docs])
        try:
            live = self.store.live(refresh=True)
        except RetrievalUnavailable:
            live = None  # a damaged manifest: index what is configured, else the sample docs
        if live and live.report.get("roots"):
            return [DocsRoot(Path(r["path"]), r["name"], r.get("url_base"), r.get("exclude", []),
                             r.get("anchors", "github")) for r in live.report["roots"]]
        return [DocsRoot(bundled_sample_docs(), SAMPLE_DOCS_NAME)]


def unique_names(roots: list[DocsRoot]) -> list[DocsRoot]:
    """The same folder given twice is indexed once; two different folders both called `docs`
    get distinct collection names (docs, docs-2)."""
    folders: set[tuple[Path, tuple[str, ...]]] = set()
    distinct = []
    for root in roots:
        if (root.path, tuple(root.exclude)) not in folders:
            folders.add((root.path, tuple(root.exclude)))
            distinct.append(root)
    seen: dict[str, int] = {}
    for root in distinct:
        count = seen.get(root.name, 0)
        seen[root.name] = count + 1
        if count:
            root.name = f"{root.name}-{count + 1}"
    return distinct
