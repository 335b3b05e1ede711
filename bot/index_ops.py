"""Index operations of the composition root: re-index runs, git sources, the eval gate,
rollback and the schedule. A mixin of bot.wiring.App, kept apart so each file stays short;
like bot.wiring it may import knowledge (lazily)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.protocols import ProgressCallback
from bot.reindex_job import SCHEDULE

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.reindex_job import ReindexJob
    from bot.scheduler import NightlyReindex
    from knowledge.indexer import GateVerdict, IndexReport
    from knowledge.store import ChunkStore, LiveIndex

log = logging.getLogger(__name__)


class IndexOperations:
    """Needs from the host: settings, store, indexer, retriever, reindex_job, docs_roots(), _retriever_over()."""

    settings: Settings
    store: ChunkStore
    reindex_job: ReindexJob

    def _source_folder(self, source) -> Path:
        if not source.git:
            return source.path
        return self.settings.sources_dir / source.name / (source.path or "")

    def index(self, docs: list[Path] | None = None, progress: ProgressCallback | None = None,
              started_by: str = "cli", trigger: str = "cli") -> IndexReport:
        """One re-index under the cross-process lock (raises AlreadyRunning if one is under way)."""
        return self.reindex_job.run(lambda report: self._build_index(report, docs), started_by, trigger, progress)

    def reindex(self, progress: ProgressCallback | None = None, started_by: str = "unknown",
                trigger: str = "chat") -> IndexReport:
        """The Reindexer the chat commands and the schedule call: the configured sources."""
        return self.index(None, progress, started_by, trigger)

    def _build_index(self, progress: ProgressCallback | None, docs: list[Path] | None = None) -> IndexReport:
        notes, unreadable = ([], set()) if docs else self._sync_git_sources(progress)
        roots = [r for r in self.docs_roots(docs) if r.name not in unreadable]
        missing = [str(r.path) for r in roots if not r.path.is_dir()]
        if missing:
            raise FileNotFoundError(f"docs folder not found: {', '.join(missing)}")
        gate = self._gate if self.settings.reindex.gate_qa_file else None
        return self.indexer.run(roots, progress=progress, approve=gate, keep_collections=frozenset(unreadable),
                                notes=notes)

    def _sync_git_sources(self, progress: ProgressCallback | None) -> tuple[list[str], set[str]]:
        """Pull every git source. Returns notes for the report and the sources with no
        checkout to index (their documents stay as they are in the index)."""
        from knowledge.git_sources import sync

        sources = [d for d in self.settings.docs if d.git]
        notes: list[str] = []
        unreadable: set[str] = set()
        for done, source in enumerate(sources, 1):
            result = sync(source.git, self.settings.sources_dir / source.name, source.branch)
            if not result.ok:
                notes.append(f"{source.name}: {result.message}")
                if result.commit is None:
                    unreadable.add(source.name)
            if progress:
                progress("pulled", done, len(sources))
        return notes, unreadable

    def _gate(self, staged: LiveIndex, live: LiveIndex | None) -> GateVerdict:
        """Keep the live version unless the new one holds hit@5 on the gate QA file."""
        from bot.evaluation import QAFileError, load_qa, retrieval_metrics
        from knowledge.indexer import GateVerdict

        cfg = self.settings.reindex
        try:
            items = load_qa(cfg.gate_qa_file)
        except QAFileError as err:
            return GateVerdict(False, f"the eval gate cannot read its QA file ({err})")
        new = retrieval_metrics(self._retriever_over(self.store.view(staged)), items)["hit@5"]
        comparable = live is not None and live.settings == staged.settings  # else: other embedding model
        old = retrieval_metrics(self._live_retriever(live), items)["hit@5"] if comparable else None
        figures = {"hit@5": new, "live_hit@5": old, "questions": len(items)}
        if new < cfg.gate_min_hit_at_5:
            return GateVerdict(False, f"hit@5 {new:.2f} on {len(items)} gate questions is below the required "
                                      f"{cfg.gate_min_hit_at_5:.2f}", figures)
        if old is not None and new < old - cfg.gate_max_drop:
            return GateVerdict(False, f"hit@5 on {len(items)} gate questions fell from {old:.2f} to {new:.2f}, "
                                      f"more than the allowed {cfg.gate_max_drop:.2f}", figures)
        compared = (f"live v{live.seq} {old:.2f}" if live and old is not None
                    else "no comparable live index" if live else "no live index to compare")
        return GateVerdict(True, f"hit@5 {new:.2f} on {len(items)} questions ({compared})", figures)

    def _live_retriever(self, live: LiveIndex):
        """The serving retriever when `live` is what it serves (its vectors are in memory
        already, or will be needed for answers anyway), else one pinned to `live`."""
        return self.retriever if self.store.live() == live else self._retriever_over(self.store.view(live))

    def rollback(self, version: int | None, started_by: str = "cli") -> RollbackOutcome:
        """Make an earlier index version live again (default: the one before the live one)."""
        def work(progress: ProgressCallback) -> RollbackOutcome:
            live, target = self.store.rollback(version, self.indexer.settings_fingerprint())
            return RollbackOutcome(live.seq, target.seq, target.built_at, live.documents, live.chunks)

        return self.reindex_job.run(work, started_by, "rollback")

    def index_versions(self) -> list[dict[str, Any]]:
        """Every recorded index version, newest first, with whether it can still be served."""
        versions = self.store.manifests()
        if not versions:
            return []
        settings = self.indexer.settings_fingerprint()
        live = versions[-1]
        rows = []
        for m in reversed(versions):
            rows.append({
                "version": m.seq, "built_at": m.built_at, "documents": m.documents, "chunks": m.chunks,
                "live": m is live, "rollback_of": m.report.get("rollback_of"),
                "unavailable": None if m is live else self.store.unavailable_reason(m, settings),
            })
        return rows

    def has_index(self) -> bool:
        return self.store.live(refresh=True) is not None

    def indexed_at(self) -> str | None:
        live = self.store.live()
        return local_time(live.built_at) if live else None

    def nightly(self) -> NightlyReindex:
        """The schedule (not started), running the configured sources' re-index."""
        from bot.scheduler import NightlyReindex, ScheduleSettings

        cfg = self.settings.reindex
        if not cfg.schedule:
            raise ValueError("no re-index schedule is configured (reindex.schedule is empty)")
        return NightlyReindex(ScheduleSettings(cfg.schedule, cfg.timezone, cfg.misfire_grace_minutes * 60,
                                               self.jobstore_path), self.scheduled_reindex)

    @property
    def jobstore_path(self) -> Path:
        from bot.scheduler import JOBSTORE_FILE

        return self.settings.data_dir / JOBSTORE_FILE

    def scheduled_reindex(self) -> None:
        """The nightly job: one re-index, summary to the admins' channel (done by the job)."""
        from bot.reindex_lock import AlreadyRunning

        try:
            self.reindex(started_by="scheduler", trigger=SCHEDULE)
        except AlreadyRunning as busy:
            log.info("scheduled re-index skipped: %s", busy)
        except Exception:
            log.exception("scheduled re-index failed")  # recorded and posted by the job

    def _vector_search(self, live) -> str:
        if live is None:
            return "no index yet"
        state = self.store.vector_index_state()
        if state is None:
            threshold = self.settings.index.vector_index_min_chunks
            return f"exact, in memory (an IVF-PQ index is built from {threshold:,} chunks on)"
        return (f"{state['type']} index: {state['indexed_rows']:,} chunks indexed, "
                f"{state['unindexed_rows']:,} searched exactly until the next re-index folds them in")

    def _next_scheduled(self) -> str:
        from datetime import datetime, timezone

        from bot.scheduler import stored_next_run

        if not self.settings.reindex.schedule:
            return "not scheduled (reindex.schedule is empty)"
        at = stored_next_run(self.jobstore_path)
        if at is None:
            return (f"{self.settings.reindex.schedule!r} once a scheduler runs "
                    "(`supportbot serve` or `supportbot scheduler`)")
        overdue = " (overdue: is the scheduler running?)" if at < datetime.now(timezone.utc) else ""
        return local_time(at.isoformat()) + overdue


@dataclass(frozen=True)
class RollbackOutcome:
    version: int
    restored: int
    built_at: str
    documents: int
    chunks: int

    def summary(self) -> str:
        return (f"Index v{self.version} is live: the index as built in v{self.restored} ({local_time(self.built_at)}), "
                f"{self.documents} documents, {self.chunks} chunks.")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "went_live": True}


def local_time(iso: str) -> str:
    """An ISO timestamp as this machine's local time, to the minute, with its zone."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    except ValueError:
        return iso
