"""What an admin checks: `status` (what is live, how fresh, what the schedule does next; the
StatusSource of the /status command) and `doctor` (every part of the data dir, checked)."""

from __future__ import annotations

import platform
from typing import Any

from bot.app.config import Settings
from bot.app.index_operations import IndexOperations, local_time
from bot.app.knowledge_parts import KnowledgeParts
from bot.app.voices import Voices
from bot.feedback import FeedbackStore
from bot.protocols import RetrievalUnavailable
from bot.reindex_job import SCHEDULE, describe_run


class StatusReport:
    def __init__(self, settings: Settings, knowledge: KnowledgeParts, index_ops: IndexOperations, voices: Voices,
                 feedback: FeedbackStore) -> None:
        self.settings = settings
        self.knowledge = knowledge
        self.index_ops = index_ops
        self.voices = voices
        self.feedback = feedback

    def status(self) -> dict[str, Any]:
        from knowledge.indexer import pending_changes
        from knowledge.store import collection_counts

        store, settings, ops = self.knowledge.store, self.settings, self.index_ops
        try:
            live = store.live(refresh=True)
            indexed = store.indexed_documents(live) if live else {}  # read once for both figures below
        except RetrievalUnavailable as err:
            return {"index": f"DAMAGED: {err}", "docs_roots": [str(r.path) for r in self.knowledge.docs_roots()],
                    "index_uri": settings.index_uri, "data_dir": str(settings.data_dir), "host": platform.node()}
        roots = self.knowledge.docs_roots()
        changes = pending_changes(indexed, roots, self.knowledge.loader_settings()) if live else None
        info: dict[str, Any] = {
            "index_version": live.seq if live else None,
            "index_built_at": local_time(live.built_at) if live else None,
            "documents": live.documents if live else 0,
            "chunks": live.chunks if live else 0,
            "sources": {name: f"{c['documents']} documents, {c['chunks']} chunks"
                        for name, c in collection_counts(indexed.values()).items()},
            "changed_since_build": (", ".join(f"{n} {kind}" for kind, n in changes.items())
                                    if changes else "no index yet"),
            "last_reindex": describe_run(ops.history.last()),
            "last_scheduled_reindex": describe_run(ops.history.last(SCHEDULE)),
            "next_scheduled_reindex": ops.next_scheduled(),
            "next_insights_digest": ops.next_scheduled("digest"),
        }
        running = ops.lock.running()
        if running:
            info["reindex_running"] = running.describe()
        registry = self.voices.registry
        info.update({
            "docs_roots": [str(r.path) for r in roots],
            "index_uri": settings.index_uri,
            "vector_search": ops.vector_search(live),
            "embedding_model": self.knowledge.embedder.model_id,
            "generator_model": settings.generation.model,
            "voice": registry.problem() or registry.active or "base model (no voice adapter)",
            "data_dir": str(settings.data_dir),
            "host": platform.node(),
        })
        return info

    def _state_check(self) -> tuple[str, str | None]:
        """The shared state: reachable, intact, and its tables at this release's schema step."""
        from bot.feedback_schema import LATEST

        where = self.feedback.database.where
        what = (f"shared state database {where}" if self.feedback.database.dialect == "postgresql"
                else f"feedback database {where}")
        problem = self.feedback.check()
        if problem is None:
            version = self.feedback.schema_version()
            what += f" (schema {version})"
            if version != LATEST:
                problem = f"its schema is at step {version}, this release needs {LATEST}: upgrade the older replicas"
        return what, problem

    def doctor(self) -> list[tuple[str, str | None]]:
        """Every part of the data dir, checked: (what, None if healthy else what is wrong and
        what to do). Reads the whole live index, so it is for an operator, not a probe."""
        checks: list[tuple[str, str | None]] = []
        store, settings = self.knowledge.store, self.settings
        try:
            live = store.live(refresh=True)
            if live is None:
                checks.append(("index", "no index yet: run `supportbot index`"))
            else:
                store.read_columns(["chunk_id", "text", "vector"], live)  # every data file, read whole
                problem = store.unavailable_reason(live, self.knowledge.indexer.settings_fingerprint())
                checks.append((f"index v{live.seq} ({live.chunks:,} chunks)",
                               f"{problem}: run `supportbot index`" if problem else None))
        except RetrievalUnavailable as err:
            checks.append(("index", str(err)))
        checks.append(self._state_check())
        registry = self.voices.registry
        checks.append((f"voice state {settings.voices_dir}", registry.problem()))
        checks += [("voice", damaged) for damaged in registry.damaged_voices()]
        for voice in registry.list():
            missing = [f for f in ("adapter_config.json", "adapter_model.safetensors") if not (voice.path / f).exists()]
            checks.append((f"voice {voice.name}", f"{voice.path} lacks {', '.join(missing)}: retrain it" if missing
                           else None))
        if settings.generation.backend == "local" and settings.generation.model == "bundled":
            from adapters_lora.base_model import converted_model_present

            ready = converted_model_present(settings.models_dir)
            checks.append((f"model cache {settings.models_dir}" + ("" if ready else " (the bundled model is "
                           "converted there by the first answer, in about a minute)"), None))
        return checks
