"""The composition root: the only module that wires knowledge, generation and platforms
into the core. Everything heavy is imported lazily, so `supportbot --help` stays instant.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import asdict, dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.acl import AccessPolicy
from bot.answering import AnsweringSettings, AnswerService
from bot.commands import CommandRegistry, build_registry
from bot.config import Settings
from bot.conversation import ConversationMemory
from bot.notify import ChannelNotifier
from bot.protocols import ProgressCallback
from bot.reindex_job import HISTORY_FILE, SCHEDULE, ReindexJob, RunHistory, describe_run
from bot.reindex_lock import ReindexLock

if TYPE_CHECKING:
    from bot.scheduler import NightlyReindex
    from knowledge.documents import DocsRoot
    from knowledge.indexer import GateVerdict, IndexReport
    from knowledge.store import ChunkStore, LiveIndex

log = logging.getLogger(__name__)

SAMPLE_DOCS_NAME = "sample-docs"


def bundled_sample_docs() -> Path:
    return Path(str(resources.files("knowledge") / "sample_docs"))


class App:
    """Builds each service on first use from one Settings object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = ReindexLock(settings.data_dir)
        self.history = RunHistory(settings.data_dir / HISTORY_FILE)
        self.notifier = ChannelNotifier()  # chat adapters register how they post
        self.reindex_job = ReindexJob(self._build_index, self.lock, self.history, self.notifier,
                                      settings.reindex.admin_channel)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if settings.embedding.model == "bundled" and settings.generation.model == "bundled":
            # Everything bundled ships in packages: a missing file must fail fast, not dial out.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    # ----- knowledge ------------------------------------------------------------------
    @cached_property
    def store(self) -> ChunkStore:
        from knowledge.store import ChunkStore

        uri = self.settings.index_uri
        if "://" not in uri:
            Path(uri).mkdir(parents=True, exist_ok=True)
        return ChunkStore(uri, storage_options=self.settings.index.storage_options)

    @cached_property
    def embedder(self):
        from knowledge.embedding import Embedder

        cfg = self.settings.embedding
        return Embedder(cfg.model, batch_size=cfg.batch_size, dtype=cfg.dtype)

    @cached_property
    def indexer(self):
        from knowledge.chunking import ChunkSettings
        from knowledge.indexer import Indexer, LoaderSettings

        cfg = self.settings.index
        return Indexer(
            self.store, self.embedder,
            ChunkSettings(cfg.chunk_max_tokens, cfg.chunk_overlap_tokens),
            LoaderSettings(int(cfg.max_file_mb * 1_000_000), tuple(cfg.encodings)),
        )

    @cached_property
    def retriever(self):
        return self._retriever_over(self.store)

    def _retriever_over(self, store: ChunkStore):
        from knowledge.retrieval import HybridRetriever, RetrievalSettings

        cfg = self.settings.retrieval
        return HybridRetriever(store, self.embedder, RetrievalSettings(
            candidates=cfg.candidates, vector_weight=cfg.vector_weight, text_weight=cfg.text_weight,
            min_similarity=cfg.min_similarity, identifier_boost=cfg.identifier_boost))

    def docs_roots(self, override: list[Path] | None = None) -> list[DocsRoot]:
        """Explicit folders, else configured sources (git ones at their checkout), else those
        the live index was built from, else the bundled sample docs."""
        from knowledge.documents import DocsRoot

        if override:
            return _unique_names([DocsRoot(Path(p)) for p in override])
        if self.settings.docs:
            return _unique_names([DocsRoot(self._source_folder(d), d.name, d.url_base, list(d.exclude))
                                  for d in self.settings.docs])
        live = self.store.live(refresh=True)
        if live and live.report.get("roots"):
            return [DocsRoot(Path(r["path"]), r["name"], r.get("url_base"), r.get("exclude", []))
                    for r in live.report["roots"]]
        return [DocsRoot(bundled_sample_docs(), SAMPLE_DOCS_NAME)]

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
        old = retrieval_metrics(self._retriever_over(self.store.view(live)), items)["hit@5"] if live else None
        figures = {"hit@5": new, "live_hit@5": old, "questions": len(items)}
        if new < cfg.gate_min_hit_at_5:
            return GateVerdict(False, f"hit@5 {new:.2f} on {len(items)} gate questions is below the required "
                                      f"{cfg.gate_min_hit_at_5:.2f}", figures)
        if old is not None and new < old - cfg.gate_max_drop:
            return GateVerdict(False, f"hit@5 on {len(items)} gate questions fell from {old:.2f} to {new:.2f}, "
                                      f"more than the allowed {cfg.gate_max_drop:.2f}", figures)
        compared = f"live v{live.seq} {old:.2f}" if live and old is not None else "no live index to compare"
        return GateVerdict(True, f"hit@5 {new:.2f} on {len(items)} questions ({compared})", figures)

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
        return _local_time(live.built_at) if live else None

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

    # ----- generation -----------------------------------------------------------------
    @cached_property
    def voices(self):
        from adapters_lora.registry import VoiceRegistry

        return VoiceRegistry(self.settings.voices_dir)

    def base_model_path(self) -> str:
        """The base generator as a loadable folder or id (converts the bundled GGUF once)."""
        from adapters_lora.base_model import resolve_base_model

        return resolve_base_model(self.settings.generation.model, self.settings.models_dir)

    def base_model_id(self) -> str:
        from adapters_lora.base_model import BUNDLED, BUNDLED_MODEL_ID

        model = self.settings.generation.model
        return BUNDLED_MODEL_ID if model == BUNDLED else model

    @cached_property
    def generator(self):
        from adapters_lora.generator import GenerationSettings, TransformersGenerator

        cfg = self.settings.generation
        return TransformersGenerator(
            cfg.model, self.settings.models_dir,
            GenerationSettings(cfg.max_new_tokens, cfg.repetition_penalty, threads=cfg.threads),
            voices=self.voices, merge_voice=self.settings.voice.merge,
        )

    # ----- core -----------------------------------------------------------------------
    @cached_property
    def answers(self) -> AnswerService:
        conv = self.settings.conversation
        memory = ConversationMemory(max_turns=conv.history_turns, ttl_seconds=conv.ttl_hours * 3600)
        return AnswerService(self.retriever, self.generator, memory, AnsweringSettings(
            top_k=self.settings.retrieval.top_k, channel_voices=tuple(self.settings.voice.channels.items())),
            indexed_at=self.indexed_at if self.settings.answers.show_indexed_at else None)

    @cached_property
    def commands(self) -> CommandRegistry:
        policy = AccessPolicy(self.settings.admins, trusted_platforms={"console", "cli"})
        return build_registry(policy, self.answers, self, self, voices=self)

    def train_voice(self, dataset: Path, name: str, overrides: dict[str, Any]):
        from adapters_lora.train import TrainingConfig, train_voice

        return train_voice(dataset, name, self.voices, self.base_model_path(), self.base_model_id(),
                           TrainingConfig(**overrides))

    # VoiceControl for the chat command
    def voice_names(self) -> list[str]:
        return [v.name for v in self.voices.list()]

    def active_voice(self) -> str | None:
        return self.voices.active

    def activate_voice(self, name: str) -> str | None:
        """Activate a voice trained on this bot's base model (another base's would not load)."""
        info = {v.name: v for v in self.voices.list()}.get(name)
        if info is not None and info.meta.get("base_model") != self.base_model_id():
            from adapters_lora.registry import RegistryError

            raise RegistryError(f"voice {name!r} was trained on {info.meta.get('base_model')}, "
                                f"but this bot runs {self.base_model_id()}")
        return self.voices.activate(name)

    def rollback_voice(self) -> str | None:
        return self.voices.rollback()

    def evaluate_voice(self, name: str, log=None) -> dict[str, Any]:
        from adapters_lora.voice_eval import evaluate_voice

        return evaluate_voice(self.generator, self.voices, name, self.embedder.embed_documents, log=log)

    def status(self) -> dict[str, Any]:
        """What an admin checks: what is live, how fresh, what the schedule does next."""
        from knowledge.indexer import pending_changes

        live = self.store.live(refresh=True)
        roots = self.docs_roots()
        changes = pending_changes(self.store, roots) if live else None
        info: dict[str, Any] = {
            "index_version": live.seq if live else None,
            "index_built_at": _local_time(live.built_at) if live else None,
            "documents": live.documents if live else 0,
            "chunks": live.chunks if live else 0,
            "sources": {name: f"{c['documents']} documents, {c['chunks']} chunks"
                        for name, c in self.store.collection_counts(live).items()} if live else {},
            "changed_since_build": (", ".join(f"{n} {kind}" for kind, n in changes.items())
                                    if changes else "no index yet"),
            "last_reindex": describe_run(self.history.last()),
            "last_scheduled_reindex": describe_run(self.history.last(SCHEDULE)),
            "next_scheduled_reindex": self._next_scheduled(),
        }
        running = self.lock.running()
        if running:
            info["reindex_running"] = running.describe()
        info.update({
            "docs_roots": [str(r.path) for r in roots],
            "index_uri": self.settings.index_uri,
            "embedding_model": self.embedder.model_id,
            "generator_model": self.settings.generation.model,
            "voice": self.voices.active or "base model (no voice adapter)",
            "data_dir": str(self.settings.data_dir),
            "host": platform.node(),
        })
        return info

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
        return _local_time(at.isoformat()) + overdue


@dataclass(frozen=True)
class RollbackOutcome:
    version: int
    restored: int
    built_at: str
    documents: int
    chunks: int

    def summary(self) -> str:
        return (f"Index v{self.version} is live: the index as built in v{self.restored} ({_local_time(self.built_at)}), "
                f"{self.documents} documents, {self.chunks} chunks.")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "went_live": True}


def _local_time(iso: str) -> str:
    """An ISO timestamp as this machine's local time, to the minute, with its zone."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    except ValueError:
        return iso


def bundled_voice_dataset() -> Path:
    return Path(str(resources.files("adapters_lora") / "sample_voice" / "driftwood_voice.jsonl"))


def voice_errors() -> tuple[type[Exception], ...]:
    from adapters_lora.dataset import DatasetError
    from adapters_lora.registry import RegistryError

    return (DatasetError, RegistryError, FileNotFoundError, ValueError)


def check_voice_dataset(path: Path) -> str:
    from adapters_lora.dataset import load_examples, split_held_out

    examples = load_examples(path)
    with_context = sum(1 for e in examples if e.context)
    train, held = split_held_out(examples, 0.1, 1234)
    return (f"{path}: {len(examples)} examples OK ({with_context} with context); "
            f"{len(train)} for training, {len(held)} held out.")


def _unique_names(roots: list[DocsRoot]) -> list[DocsRoot]:
    """Two folders both called `docs` get distinct collection names (docs, docs-2)."""
    seen: dict[str, int] = {}
    for root in roots:
        count = seen.get(root.name, 0)
        seen[root.name] = count + 1
        if count:
            root.name = f"{root.name}-{count + 1}"
    return roots


def run_console(app: App, user: str) -> None:
    from adapters.console import ConsoleChat

    ConsoleChat(app.commands, user_id=f"console:{user}").run()
