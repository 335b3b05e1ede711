"""Index operations: re-index runs under the cross-process lock, git sources, the eval gate,
rollback, index versions and the nightly schedule. The Reindexer the chat commands and the
scheduler call; like the rest of the composition root it imports knowledge lazily."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.app.config import Settings
from bot.app.knowledge_parts import KnowledgeParts
from bot.notify import ChannelNotifier
from bot.protocols import ProgressCallback
from bot.reindex_job import HISTORY_FILE, SCHEDULE, ReindexJob, RunHistory, RunRecord
from bot.reindex_lock import ReindexLock, ReindexLocking

if TYPE_CHECKING:
    from bot.app.scheduler import DigestJob, NightlyReindex
    from knowledge.indexer import GateVerdict, IndexReport
    from knowledge.store import ChunkStore, LiveIndex

log = logging.getLogger(__name__)


def reindex_lock(settings: Settings) -> ReindexLocking:
    """With `state.url` the lock is in PostgreSQL (one writer across hosts), else in the data dir."""
    if settings.state.url:
        from bot.app.pg_state import PostgresReindexLock

        return PostgresReindexLock(settings.state.url)
    return ReindexLock(settings.data_dir)


class IndexOperations:
    def __init__(self, settings: Settings, knowledge: KnowledgeParts, notifier: ChannelNotifier,
                 on_finished: Callable[[RunRecord], None] | None = None) -> None:
        self.settings = settings
        self.knowledge = knowledge
        self.lock = reindex_lock(settings)
        self.history = RunHistory(settings.data_dir / HISTORY_FILE)
        self.job = ReindexJob(self._build_index, self.lock, self.history, notifier,
                              settings.reindex.admin_channel, on_finished=on_finished)

    @property
    def store(self) -> ChunkStore:
        return self.knowledge.store

    def index(self, docs: list[Path] | None = None, progress: ProgressCallback | None = None,
              started_by: str = "cli", trigger: str = "cli") -> IndexReport:
        """One re-index under the cross-process lock (raises AlreadyRunning if one is under way)."""
        return self.job.run(lambda report: self._build_index(report, docs), started_by, trigger, progress)

    def reindex(self, progress: ProgressCallback | None = None, started_by: str = "unknown",
                trigger: str = "chat") -> IndexReport:
        """The Reindexer the chat commands and the schedule call: the configured sources."""
        return self.index(None, progress, started_by, trigger)

    def _build_index(self, progress: ProgressCallback | None, docs: list[Path] | None = None) -> IndexReport:
        notes, unreadable = ([], set()) if docs else self._sync_sources(progress)
        roots = [r for r in self.knowledge.docs_roots(docs) if r.name not in unreadable]
        missing = [str(r.path) for r in roots if not r.path.is_dir()]
        if missing:
            raise FileNotFoundError(f"docs folder not found: {', '.join(missing)}")
        gate = self._gate if self.settings.reindex.gate_qa_file else None
        return self.knowledge.indexer.run(roots, progress=progress, approve=gate,
                                          keep_collections=frozenset(unreadable), notes=notes)

    def _sync_sources(self, progress: ProgressCallback | None) -> tuple[list[str], set[str]]:
        """Pull every git source and crawl every website. Returns notes for the report and
        the sources with nothing to index (their documents stay as they are in the index)."""
        notes, unreadable = self._sync_git_sources(progress)
        for source in (d for d in self.settings.docs if d.path is not None and not d.git
                       and d.path.suffix.lower() == ".zip"):
            from knowledge.archives import unpack

            result = unpack(source.path, self.knowledge.source_folder(source))
            if not result.ok or result.unsafe:
                notes.append(f"{source.name}: {result.message}")
                if not result.folder.is_dir():
                    unreadable.add(source.name)
        for source in (d for d in self.settings.docs if d.url):
            site_notes, readable = self._crawl_website(source, progress)
            notes += site_notes
            if not readable:
                unreadable.add(source.name)
        return notes, unreadable

    def _sync_git_sources(self, progress: ProgressCallback | None) -> tuple[list[str], set[str]]:
        from knowledge.git_sources import sync

        sources = [d for d in self.settings.docs if d.git]
        notes: list[str] = []
        unreadable: set[str] = set()
        if progress and sources:
            progress("pulled", 0, len(sources))
        for done, source in enumerate(sources, 1):
            result = sync(source.git, self.settings.sources_dir / source.name, source.branch)
            if not result.ok:
                notes.append(f"{source.name}: {result.message}")
                if result.commit is None:
                    unreadable.add(source.name)
            if progress:
                progress("pulled", done, len(sources))
        return notes, unreadable

    def _crawl_website(self, source: Any, progress: ProgressCallback | None) -> tuple[list[str], bool]:
        """Crawl one website into its mirror: (notes, whether it has pages to index)."""
        from knowledge.web_fetch import FetchSettings, WebClient
        from knowledge.web_sources import SiteSettings, crawl_site, pages_folder

        folder = self.settings.sources_dir / source.name
        client = WebClient(FetchSettings(timeout_s=source.timeout_s, retries=source.retries,
                                         delay_s=source.delay_ms / 1000,
                                         max_bytes=int(self.settings.index.max_file_mb * 1_000_000)))
        try:
            report = crawl_site(SiteSettings(source.url, tuple(source.include), tuple(source.exclude),
                                             source.max_pages), folder, client, progress)
        finally:
            client.close()
        for line in report.notes(source.name, limit=1000):
            log.info("%s", line)
        return report.notes(source.name), pages_folder(folder).is_dir()

    def _gate(self, staged: LiveIndex, live: LiveIndex | None) -> GateVerdict:
        """Keep the live version unless the new one holds hit@5 on the gate QA file."""
        from bot.evaluation import QAFileError, load_qa, retrieval_metrics
        from knowledge.indexer import GateVerdict

        cfg = self.settings.reindex
        try:
            items = load_qa(cfg.gate_qa_file)
        except QAFileError as err:
            return GateVerdict(False, f"the eval gate cannot read its QA file ({err})")
        new = retrieval_metrics(self.knowledge.retriever_over(self.store.view(staged)), items)["hit@5"]
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
        k = self.knowledge
        return k.retriever if self.store.live() == live else k.retriever_over(self.store.view(live))

    def rollback(self, version: int | None, started_by: str = "cli") -> RollbackOutcome:
        """Make an earlier index version live again (default: the one before the live one)."""
        def work(progress: ProgressCallback) -> RollbackOutcome:
            live, target = self.store.rollback(version, self.knowledge.indexer.settings_fingerprint())
            return RollbackOutcome(live.seq, target.seq, target.built_at, live.documents, live.chunks)

        return self.job.run(work, started_by, "rollback")

    def index_versions(self) -> list[dict[str, Any]]:
        """Every recorded index version, newest first, with whether it can still be served."""
        versions = self.store.manifests()
        if not versions:
            return []
        settings = self.knowledge.indexer.settings_fingerprint()
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

    def nightly(self, digest: DigestJob | None = None) -> NightlyReindex:
        """The schedule (not started), running the configured sources' re-index (and the
        admins' digest, when one is handed in)."""
        from bot.app.scheduler import NightlyReindex, ScheduleError, ScheduleSettings

        cfg = self.settings.reindex
        if not cfg.schedule and digest is None:
            raise ScheduleError("no re-index schedule is configured (reindex.schedule is empty)")
        shared: dict = {}
        if self.settings.state.url:  # every scheduler process on every host shares the schedule
            from bot.app.pg_state import ScheduledRunClaims, sqlalchemy_url

            claims = ScheduledRunClaims(self.settings.state.url)
            shared = {"jobstore_url": sqlalchemy_url(self.settings.state.url), "claim": claims.claim,
                      "starting": claims.starting}
        return NightlyReindex(ScheduleSettings(cfg.schedule, cfg.timezone, cfg.misfire_grace_minutes * 60,
                                               self.jobstore_path, **shared), self.scheduled_reindex, digest)

    @property
    def jobstore_path(self) -> Path:
        from bot.app.scheduler import JOBSTORE_FILE

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

    def vector_search(self, live: LiveIndex | None) -> str:
        if live is None:
            return "no index yet"
        state = self.store.vector_index_state()
        if state is None:
            threshold = self.settings.index.vector_index_min_chunks
            return f"exact, in memory (an IVF-PQ index is built from {threshold:,} chunks on)"
        return (f"{state['type']} index: {state['indexed_rows']:,} chunks indexed, "
                f"{state['unindexed_rows']:,} searched exactly until the next re-index folds them in")

    def next_scheduled(self, job: str = "reindex") -> str:
        """When the re-index (or the digest: `job="digest"`) runs next, as the scheduler stored it."""
        from datetime import datetime, timezone

        from bot.app.scheduler import DIGEST_JOB_ID, JOB_ID, stored_next_run

        cron, key, job_id = ((self.settings.reindex.schedule, "reindex.schedule", JOB_ID) if job == "reindex" else
                             (self.settings.insights.digest_schedule, "insights.digest_schedule", DIGEST_JOB_ID))
        if not cron:
            return f"not scheduled ({key} is empty)"
        url = self.settings.state.url
        if url:
            from bot.app.pg_state import sqlalchemy_url

            url = sqlalchemy_url(url)
        at = stored_next_run(self.jobstore_path, job_id, url)
        if at is None:
            return f"{cron!r} once a scheduler runs (`supportbot serve` or `supportbot scheduler`)"
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
