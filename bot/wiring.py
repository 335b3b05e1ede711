"""The composition root: the only module that wires knowledge, generation and platforms
into the core. Everything heavy is imported lazily, so `supportbot --help` stays instant.
"""

from __future__ import annotations

import os
import platform
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.acl import AccessPolicy
from bot.answering import AnsweringSettings, AnswerService
from bot.commands import CommandRegistry, build_registry
from bot.composer import Composer
from bot.config import Settings
from bot.conversation import ConversationMemory
from bot.feedback import FeedbackStore
from bot.protocols import RetrievalUnavailable
from bot.index_ops import IndexOperations, local_time
from bot.notify import ChannelNotifier
from bot.reindex_job import HISTORY_FILE, SCHEDULE, ReindexJob, RunHistory, describe_run
from bot.reindex_lock import ReindexLock
from bot.work_queue import WorkQueue

if TYPE_CHECKING:
    from knowledge.documents import DocsRoot
    from knowledge.store import ChunkStore

SAMPLE_DOCS_NAME = "sample-docs"


def bundled_sample_docs() -> Path:
    return Path(str(resources.files("knowledge") / "sample_docs"))


class App(IndexOperations):
    """Builds each service on first use from one Settings object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = ReindexLock(settings.data_dir)
        self.history = RunHistory(settings.data_dir / HISTORY_FILE)
        self.notifier = ChannelNotifier()  # chat adapters register how they post
        self.reindex_job = ReindexJob(self._build_index, self.lock, self.history, self.notifier,
                                      settings.reindex.admin_channel, on_finished=self._observe_run)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if settings.embedding.model == "bundled" and settings.generation.model == "bundled":
            # Everything bundled ships in packages: a missing file must fail fast, not dial out.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    # ----- knowledge ------------------------------------------------------------------
    @cached_property
    def store(self) -> ChunkStore:
        from knowledge.store import ChunkStore, VectorIndexSettings

        uri = self.settings.index_uri
        if "://" not in uri:
            Path(uri).mkdir(parents=True, exist_ok=True)
        cfg = self.settings.index
        return ChunkStore(uri, storage_options=cfg.storage_options, vector_index=VectorIndexSettings(
            min_rows=cfg.vector_index_min_chunks, nprobes=cfg.vector_index_nprobes,
            rescored=cfg.vector_index_rescored))

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
            LoaderSettings(int(cfg.max_file_mb * 1_000_000), tuple(cfg.encodings), cfg.max_text_chars),
        )

    @cached_property
    def retriever(self):
        return self._retriever_over(self.store)

    def _retriever_over(self, store: ChunkStore):
        from knowledge.retrieval import HybridRetriever, RetrievalSettings

        cfg = self.settings.retrieval
        return HybridRetriever(store, self.embedder, RetrievalSettings(
            candidates=cfg.candidates, text_weight=cfg.text_weight, page_weight=cfg.page_weight,
            min_similarity=cfg.min_similarity, min_covered_similarity=cfg.min_covered_similarity,
            identifier_boost=cfg.identifier_boost))

    def docs_roots(self, override: list[Path] | None = None) -> list[DocsRoot]:
        """Explicit folders, else configured sources (git ones at their checkout), else those
        the live index was built from, else the bundled sample docs."""
        from knowledge.documents import DocsRoot

        if override:
            return _unique_names([DocsRoot(Path(p)) for p in override])
        if self.settings.docs:
            return _unique_names([DocsRoot(self._source_folder(d), d.name, d.url_base, list(d.exclude))
                                  for d in self.settings.docs])
        try:
            live = self.store.live(refresh=True)
        except RetrievalUnavailable:
            live = None  # a damaged manifest: index what is configured, else the sample docs
        if live and live.report.get("roots"):
            return [DocsRoot(Path(r["path"]), r["name"], r.get("url_base"), r.get("exclude", []))
                    for r in live.report["roots"]]
        return [DocsRoot(bundled_sample_docs(), SAMPLE_DOCS_NAME)]

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
        cfg = self.settings.generation
        if cfg.backend == "openai":
            from adapters_lora.remote_generator import RemoteGenerator, RemoteSettings

            key = self.settings.openai_api_key
            return RemoteGenerator(RemoteSettings(
                cfg.remote_url, cfg.remote_model, key.get_secret_value() if key else None, cfg.max_new_tokens,
                cfg.timeout_s, cfg.retries), voices=self.voices)
        from adapters_lora.generator import GenerationSettings, TransformersGenerator

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
        scoped = tuple((channel, tuple(names)) for channel, names in self.settings.answers.channel_sources.items())
        cfg = self.settings.answers
        mode = cfg.mode if cfg.mode != "auto" else ("free" if self.settings.generation.backend == "openai" else "composed")
        return AnswerService(self.retriever, self.generator, memory, AnsweringSettings(
            top_k=self.settings.retrieval.top_k, channel_voices=tuple(self.settings.voice.channels.items()),
            channel_sources=scoped, mode=mode, frame=cfg.frame),
            indexed_at=self.indexed_at if self.settings.answers.show_indexed_at else None,
            active_voice=self.active_voice, on_answered=lambda q, a: self.metrics.on_answer(q, a),
            composer=Composer(self.embedder))

    @cached_property
    def feedback(self) -> FeedbackStore:
        return FeedbackStore(self.settings.data_dir / "feedback.sqlite", on_rating=lambda r: self.metrics.on_rating(r))

    @cached_property
    def metrics(self):
        from bot.metrics import Metrics

        return Metrics(queue_depth=lambda: self.work_queue.depth,
                       index_version=lambda: (live.seq if (live := self.store.live()) else None))

    def _observe_run(self, run) -> None:
        self.metrics.on_reindex(run)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """For /healthz: serving needs a live index; the queue depth shows whether it keeps up."""
        try:
            live = self.store.live()
        except Exception as err:  # e.g. object storage unreachable
            return False, {"status": "error", "error": f"index unreadable: {err}"}
        info = {"status": "ok" if live else "no index", "index_version": live.seq if live else None,
                "queue_depth": self.work_queue.depth, "queue_capacity": self.work_queue.capacity}
        return live is not None, info

    @cached_property
    def work_queue(self) -> WorkQueue:
        return WorkQueue(self.settings.serve.queue_size, self.settings.serve.workers)

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

    def doctor(self) -> list[tuple[str, str | None]]:
        """Every part of the data dir, checked: (what, None if healthy else what is wrong and
        what to do). Reads the whole live index, so it is for an operator, not a probe."""
        checks: list[tuple[str, str | None]] = []
        try:
            live = self.store.live(refresh=True)
            if live is None:
                checks.append(("index", "no index yet: run `supportbot index`"))
            else:
                self.store.read_columns(["chunk_id", "text", "vector"], live)  # every data file, read whole
                problem = self.store.unavailable_reason(live, self.indexer.settings_fingerprint())
                checks.append((f"index v{live.seq} ({live.chunks:,} chunks)",
                               f"{problem}: run `supportbot index`" if problem else None))
        except RetrievalUnavailable as err:
            checks.append(("index", str(err)))
        checks.append((f"feedback database {self.settings.data_dir / 'feedback.sqlite'}", self.feedback.check()))
        checks.append((f"voice state {self.settings.voices_dir}", self.voices.problem()))
        checks += [("voice", damaged) for damaged in self.voices.damaged_voices()]
        for voice in self.voices.list():
            missing = [f for f in ("adapter_config.json", "adapter_model.safetensors") if not (voice.path / f).exists()]
            checks.append((f"voice {voice.name}", f"{voice.path} lacks {', '.join(missing)}: retrain it" if missing
                           else None))
        if self.settings.generation.backend == "local" and self.settings.generation.model == "bundled":
            from adapters_lora.base_model import converted_model_present

            ready = converted_model_present(self.settings.models_dir)
            checks.append((f"model cache {self.settings.models_dir}" + ("" if ready else " (the bundled model is "
                           "converted there by the first answer, in about a minute)"), None))
        return checks

    def status(self) -> dict[str, Any]:
        """What an admin checks: what is live, how fresh, what the schedule does next."""
        from knowledge.indexer import pending_changes
        from knowledge.store import collection_counts

        try:
            live = self.store.live(refresh=True)
            indexed = self.store.indexed_documents(live) if live else {}  # read once for both figures below
        except RetrievalUnavailable as err:
            return {"index": f"DAMAGED: {err}", "docs_roots": [str(r.path) for r in self.docs_roots()],
                    "index_uri": self.settings.index_uri, "data_dir": str(self.settings.data_dir),
                    "host": platform.node()}
        roots = self.docs_roots()
        changes = pending_changes(indexed, roots) if live else None
        info: dict[str, Any] = {
            "index_version": live.seq if live else None,
            "index_built_at": local_time(live.built_at) if live else None,
            "documents": live.documents if live else 0,
            "chunks": live.chunks if live else 0,
            "sources": {name: f"{c['documents']} documents, {c['chunks']} chunks"
                        for name, c in collection_counts(indexed.values()).items()},
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
            "vector_search": self._vector_search(live),
            "embedding_model": self.embedder.model_id,
            "generator_model": self.settings.generation.model,
            "voice": self.voices.problem() or self.voices.active or "base model (no voice adapter)",
            "data_dir": str(self.settings.data_dir),
            "host": platform.node(),
        })
        return info

def bundled_voice_dataset() -> Path:
    return Path(str(resources.files("adapters_lora") / "sample_voice" / "driftwood_voice.jsonl"))


def voice_errors() -> tuple[type[Exception], ...]:
    from adapters_lora.dataset import DatasetError
    from adapters_lora.registry import RegistryError

    return (DatasetError, RegistryError, FileNotFoundError, ValueError)


def check_voice_dataset(path: Path) -> str:
    from adapters_lora.dataset import load_examples, require_enough, split_held_out

    examples = load_examples(path)
    require_enough(path, examples)
    with_context = sum(1 for e in examples if e.context)
    train, held = split_held_out(examples, 0.1, 1234)
    return (f"{path}: {len(examples)} examples OK ({with_context} with context); "
            f"{len(train)} for training, {len(held)} held out.")


def _unique_names(roots: list[DocsRoot]) -> list[DocsRoot]:
    """The same folder given twice is indexed once; two different folders both called `docs`
    get distinct collection names (docs, docs-2)."""
    folders: set[tuple[Path, tuple[str, ...]]] = set()
    distinct = []
    for root in roots:
        if (root.path, tuple(root.exclude)) not in folders:
            folders.add((root.path, tuple(root.exclude)))
            distinct.append(root)
    roots = distinct
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
