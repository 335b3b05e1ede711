"""Incremental (re-)indexing: scan docs roots, embed only what changed, commit atomically."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from knowledge.anchors import with_anchors
from knowledge.chunking import Chunker, ChunkSettings
from knowledge.documents import Chunk, DocsRoot, Document, SkippedFile
from knowledge.embedding import Embedder
from knowledge.loaders import LOADERS, LOADERS_VERSION, LoadError, load_file
from knowledge.sources import iter_source_files, source_url
from knowledge.web_page import load_web_page, page_digest
from knowledge.wiki_exports import is_attachment
from knowledge.store import ChunkStore, IndexDamaged, IndexedDocument, LiveIndex

log = logging.getLogger(__name__)
ProgressCallback = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class GateVerdict:
    """The eval gate's decision on a staged version (see bot.app.application for the gate itself)."""

    accepted: bool
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


Approval = Callable[[LiveIndex, "LiveIndex | None"], GateVerdict]  # (staged, live) -> verdict
_WRITE_BATCH = 2048


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    kept_previous: list[str] = field(default_factory=list)  # skipped now, still served from the last good version
    full_rebuild: str | None = None
    chunks_embedded: int = 0
    documents: int = 0
    chunks: int = 0
    version: int | None = None
    roots: list[dict[str, Any]] = field(default_factory=list)  # what was indexed, for the next run
    notes: list[str] = field(default_factory=list)  # source problems worth an admin's attention
    gate: dict[str, Any] | None = None
    rejected: str | None = None  # why the eval gate kept the previous version live
    went_live: bool = False  # a new version was made live by this run
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted or self.full_rebuild)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = [{"source": s.source, "reason": s.reason} for s in self.skipped]
        return data

    def summary(self) -> str:
        seconds = self.timings_ms.get("total", 0) / 1000
        if self.rejected:
            live = f"v{self.version}" if self.version else "no index"
            lines = [f"New index NOT made live: {self.rejected}. {live} stays live ({seconds:.1f}s)."]
        else:
            lines = [f"Index v{self.version}: {self.documents} documents, {self.chunks} chunks ({seconds:.1f}s)."]
        if self.gate and not self.rejected:
            lines.append(f"Eval gate passed: {self.gate['reason']}.")
        lines += [f"Note: {note}" for note in self.notes]
        if self.full_rebuild:
            lines.append(f"Full rebuild: {self.full_rebuild}.")
        lines.append(
            f"Added {len(self.added)}, updated {len(self.updated)}, deleted {len(self.deleted)}, "
            f"unchanged {self.unchanged}, skipped {len(self.skipped)}; embedded {self.chunks_embedded} chunks."
        )
        for item in self.skipped[:20]:
            kept = " (previous version kept)" if item.source in self.kept_previous else ""
            lines.append(f"  skipped {item.source}: {item.reason}{kept}")
        if len(self.skipped) > 20:
            lines.append(f"  ... and {len(self.skipped) - 20} more skipped")
        return "\n".join(lines)


@dataclass(frozen=True)
class LoaderSettings:
    max_file_bytes: int = 20_000_000
    encodings: tuple[str, ...] = ("utf-8",)
    max_text_chars: int = 3_000_000  # ~4,000 chunks: a 900-page manual fits, a 5 MB one-line dump does not


class Indexer:
    def __init__(self, store: ChunkStore, embedder: Embedder, chunking: ChunkSettings | None = None,
                 loading: LoaderSettings | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.chunk_settings = chunking or ChunkSettings()
        self.loading = loading or LoaderSettings()

    def settings_fingerprint(self) -> dict[str, Any]:
        """Everything that changes stored vectors or chunk boundaries."""
        return {"embedding_model": self.embedder.model_id, "chunking": self.chunk_settings.fingerprint(),
                "loaders": LOADERS_VERSION}

    def run(self, roots: list[DocsRoot], progress: ProgressCallback | None = None,
            approve: Approval | None = None, keep_collections: frozenset[str] = frozenset(),
            notes: list[str] | None = None) -> IndexReport:
        """Index `roots` incrementally. `approve` sees the finished version before it goes
        live and may keep the old one; documents of `keep_collections` (a source that could
        not be read this time) stay as they are."""
        started = time.perf_counter()
        report = IndexReport(roots=[
            {"path": str(r.path), "name": r.name, "url_base": r.url_base, "exclude": list(r.exclude),
             "anchors": r.anchors} for r in roots
        ], notes=list(notes or []))
        names = [r.name for r in roots]
        if len(set(names)) != len(names):
            raise ValueError(f"docs roots need distinct names, got {names}")
        dims = lambda: self.embedder.dimensions  # noqa: E731 (asked for a new table only: the model loads in seconds)
        try:
            writer, report.full_rebuild = self.store.begin(self.settings_fingerprint(), dims)
            previous = {} if report.full_rebuild else self.store.indexed_documents(writer.base)
        except IndexDamaged as damaged:
            log.info("%s", damaged)  # the report says it: "the index was damaged (...); rebuilt from the docs"
            self.store.reset_damaged()
            writer, _ = self.store.begin(self.settings_fingerprint(), dims)
            report.full_rebuild = f"the index was damaged ({damaged.reason}); rebuilt from the docs"
            previous = {}

        changed_docs, seen = self._scan(roots, previous, report, progress)
        report.timings_ms["scan"] = (time.perf_counter() - started) * 1000

        gone = [key for key in previous if key not in seen and key[0] not in keep_collections]
        report.deleted = [f"{c}/{s}" if len(roots) > 1 else s for c, s in gone]
        writer.delete_documents(gone + [(d.collection, d.source) for d in changed_docs
                                        if (d.collection, d.source) in previous])

        t0 = time.perf_counter()
        chunker = Chunker(self.embedder.token_offsets, self.chunk_settings)
        chunks: list[Chunk] = [c for doc_chunks in chunker.chunk_many(changed_docs) for c in doc_chunks]
        report.timings_ms["chunk"] = (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        self._embed_and_write(writer, chunks, progress)
        report.chunks_embedded = len(chunks)
        report.timings_ms["embed_write"] = (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        staged = writer.stage()
        report.timings_ms["stage"] = (time.perf_counter() - t0) * 1000
        live: LiveIndex | None = staged
        if approve is not None and writer.has_changes:
            t0 = time.perf_counter()
            if progress:
                progress("evaluated", 0, 1)
            verdict = approve(staged, writer.base)
            report.gate = {"accepted": verdict.accepted, "reason": verdict.reason, **verdict.figures}
            report.timings_ms["gate"] = (time.perf_counter() - t0) * 1000
            if progress:
                progress("evaluated", 1, 1)
            if not verdict.accepted:
                report.rejected = verdict.reason
                writer.discard()
                live = writer.base
        if not report.rejected:
            t0 = time.perf_counter()
            report.went_live = writer.has_changes
            live = writer.commit(staged, report.to_dict())
            report.timings_ms["commit"] = (time.perf_counter() - t0) * 1000
        if live is not None:
            report.version, report.documents, report.chunks = live.seq, live.documents, live.chunks
        report.timings_ms["total"] = (time.perf_counter() - started) * 1000
        return report

    def _scan(self, roots: list[DocsRoot], previous: dict, report: IndexReport,
              progress: ProgressCallback | None) -> tuple[list[Document], set[tuple[str, str]]]:
        changed: list[Document] = []
        seen: set[tuple[str, str]] = set()
        files = []
        for root in roots:
            outside: list[tuple[str, str]] = []  # links out of the root: never read, never kept from a past run
            files += [(root, source, path) for source, path in iter_source_files(root, outside)]
            report.skipped += [SkippedFile(f"{root.name}/{source}" if len(roots) > 1 else source, reason)
                               for source, reason in outside]
        if progress:
            progress("scanned", 0, len(files))  # the bar starts when scanning does: its rate is honest
        attachments = 0
        for done, (root, source, path) in enumerate(files, 1):
            key = (root.name, source)
            label = f"{root.name}/{source}" if len(roots) > 1 else source
            if progress:
                progress("scanned", done, len(files))
            if root.page_urls is None and is_attachment(source, path.suffix.lower() in LOADERS):
                attachments += 1
                continue
            before = previous.get(key)
            if root.page_urls is not None and before is not None and path.stat().st_mtime == before.mtime:
                seen.add(key)  # a crawled page is rewritten only when it changed: same mtime, same page
                report.unchanged += 1
                continue
            try:
                document = self._load(root, source, path)
            except LoadError as err:
                report.skipped.append(SkippedFile(label, str(err)))
                if key in previous:
                    seen.add(key)  # keep serving the last good version rather than lose it
                    report.kept_previous.append(label)
                continue
            seen.add(key)
            if before is not None and before.content_hash == document.content_hash:
                report.unchanged += 1
            else:
                (report.updated if before else report.added).append(label)
                changed.append(document)
        if attachments:
            report.notes.append(f"passed over {attachments} attachment files of wiki exports (images, files, styles)")
        return changed, seen

    def _load(self, root: DocsRoot, source: str, path) -> Document:
        """One file as a Document, its sections' anchors set; LoadError says why not."""
        website = root.page_urls is not None
        if website and source not in root.page_urls:
            raise LoadError("not a page of the last crawl (left in the site's folder by hand?)")
        loaded, data = load_file(path, source, list(self.loading.encodings), self.loading.max_file_bytes,
                                 load_web_page if website else None)
        text_chars = sum(len(section.text) for section in loaded.sections)
        if text_chars > self.loading.max_text_chars:
            raise LoadError(f"{text_chars:,} characters of text, over the limit of "
                            f"{self.loading.max_text_chars:,} (index.max_text_chars)")
        if website:
            url = root.page_urls[source]
            digest = page_digest(loaded)
            sections = loaded.sections
        else:
            url = source_url(root, source)
            digest = file_digest(data, url, root.anchors)
            sections = with_anchors(loaded.sections, root.anchors) if url else loaded.sections
        return Document(collection=root.name, source=source, title=loaded.title, sections=sections,
                        content_hash=digest, mtime=path.stat().st_mtime, url=url)

    def _embed_and_write(self, writer, chunks: list[Chunk], progress: ProgressCallback | None) -> None:
        # Length-sorted across the whole run so every encode batch pads little; row order is free.
        chunks = sorted(chunks, key=lambda c: len(c.search_text), reverse=True)
        if progress and chunks:
            progress("embedded", 0, len(chunks))
        for start in range(0, len(chunks), _WRITE_BATCH):
            batch = chunks[start:start + _WRITE_BATCH]
            offset = start

            def report(done: int, total: int, offset: int = offset) -> None:
                if progress:
                    progress("embedded", offset + done, len(chunks))

            vectors = self.embedder.embed_documents([c.search_text for c in batch], progress=report)
            if progress and start == 0:
                progress("written", 0, len(chunks))
            writer.add(batch, vectors)
            if progress:
                progress("written", start + len(batch), len(chunks))


def file_digest(data: bytes, url: str | None, anchors: str) -> str:
    """A file's content hash, and for a cited file how its citations link (the page URL from
    `url_base`, the anchor style): changing either setting re-renders its chunks' links."""
    digest = hashlib.sha256(data)
    if url:
        digest.update(f"\0{url}\0{anchors}".encode("utf-8"))
    return digest.hexdigest()


def pending_changes(previous: dict[tuple[str, str], IndexedDocument], roots: list[DocsRoot],
                    loading: LoaderSettings | None = None) -> dict[str, int]:
    """Source files added, modified or deleted since `previous` (the live version's
    `ChunkStore.indexed_documents()`), as the next re-index would count them. A file whose
    modification time matches is not read; a crawled page is compared by its text, as it is
    indexed (its markup may change while its text does not), and a file in a site's folder that
    the last crawl did not fetch is no page of it."""
    loading = loading or LoaderSettings()
    counts = {"added": 0, "modified": 0, "deleted": 0}
    seen: set[tuple[str, str]] = set()
    for root in roots:
        website = root.page_urls is not None
        for source, path in iter_source_files(root):
            if website and source not in root.page_urls:
                continue
            key = (root.name, source)
            seen.add(key)
            before = previous.get(key)
            if before is None:
                counts["added"] += path.suffix.lower() in LOADERS
            elif path.stat().st_mtime != before.mtime:
                try:
                    if website:
                        loaded, _ = load_file(path, source, list(loading.encodings), loading.max_file_bytes,
                                              load_web_page)
                        digest = page_digest(loaded)
                    else:
                        digest = file_digest(path.read_bytes(), source_url(root, source), root.anchors)
                    changed = digest != before.content_hash
                except (OSError, LoadError):
                    changed = True
                counts["modified"] += changed
    names = {r.name for r in roots}
    counts["deleted"] = sum(1 for key in previous if key[0] in names and key not in seen)
    return counts
