"""The application, assembled from one Settings object: construction only.

Every part is built on first use (so `supportbot --help` and `status` stay instant and load
no model) or handed in through the constructor: tests and benchmarks pass the session's
loaded embedder, a scripted generator, or a store elsewhere the same way production wiring
would. Nothing here answers, indexes or renders; the parts do.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any

from bot.acl import AccessPolicy
from bot.answering import AnsweringSettings, AnswerService
from bot.app.config import Settings
from bot.app.index_operations import IndexOperations
from bot.app.knowledge_parts import KnowledgeParts
from bot.app.status import StatusReport
from bot.app.voices import Voices
from bot.chat_flow import ChatFlow
from bot.commands import CommandRegistry, build_registry
from bot.composer import Composer
from bot.conversation import ConversationMemory
from bot.feedback import FeedbackStore
from bot.state_db import SqliteStateDatabase, StateDatabase
from bot.notify import ChannelNotifier
from bot.protocols import Generator
from bot.work_queue import WorkQueue

if TYPE_CHECKING:
    from adapters_lora.registry import VoiceRegistry
    from bot.app.insights_service import InsightsService, WeeklyDigest
    from bot.app.metrics import Metrics
    from bot.app.scheduler import NightlyReindex
    from knowledge.embedding import Embedder
    from knowledge.retrieval import HybridRetriever
    from knowledge.store import ChunkStore


class App:
    def __init__(self, settings: Settings, *, store: ChunkStore | None = None, embedder: Embedder | None = None,
                 retriever: HybridRetriever | None = None, generator: Generator | None = None,
                 voice_registry: VoiceRegistry | None = None, feedback: FeedbackStore | None = None,
                 work_queue: WorkQueue | None = None) -> None:
        self.settings = settings
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if settings.embedding.model == "bundled" and settings.generation.model == "bundled":
            # Everything bundled ships in packages: a missing file must fail fast, not dial out.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.knowledge = KnowledgeParts(settings, store=store, embedder=embedder, retriever=retriever)
        self.notifier = ChannelNotifier()  # chat adapters register how they post
        self.index_ops = IndexOperations(settings, self.knowledge, self.notifier,
                                         on_finished=lambda run: self.metrics.on_reindex(run))
        self.voices = Voices(settings, voice_registry)
        self._generator = generator
        self._feedback = feedback
        self._work_queue = work_queue
        self._metrics: Metrics | None = None
        self._insights: InsightsService | None = None
        self._answers: AnswerService | None = None
        self._commands: CommandRegistry | None = None
        self._chat: ChatFlow | None = None
        self.status_report = StatusReport(settings, self.knowledge, self.index_ops, self.voices, self.feedback)
        self.ready = True  # `serve` clears it until warm_up() has loaded what the first answer needs

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            cfg = self.settings.generation
            if cfg.backend == "openai":
                from adapters_lora.remote_generator import RemoteGenerator, RemoteSettings

                key = self.settings.openai_api_key
                self._generator = RemoteGenerator(RemoteSettings(
                    cfg.remote_url, cfg.remote_model, key.get_secret_value() if key else None, cfg.max_new_tokens,
                    cfg.timeout_s, cfg.retries), voices=self.voices.registry)
            else:
                from adapters_lora.generator import GenerationSettings, TransformersGenerator

                self._generator = TransformersGenerator(
                    cfg.model, self.settings.models_dir,
                    GenerationSettings(cfg.max_new_tokens, cfg.repetition_penalty, threads=cfg.threads,
                                       weights=cfg.weights, max_batch=cfg.max_batch),
                    voices=self.voices.registry, merge_voice=self.settings.voice.merge)
        return self._generator

    @property
    def answers(self) -> AnswerService:
        if self._answers is None:
            conv, cfg = self.settings.conversation, self.settings.answers
            memory = ConversationMemory(max_turns=conv.history_turns, ttl_seconds=conv.ttl_hours * 3600)
            scoped = tuple((channel, tuple(names)) for channel, names in cfg.channel_sources.items())
            mode = cfg.mode if cfg.mode != "auto" else ("free" if self.settings.generation.backend == "openai"
                                                        else "composed")
            self._answers = AnswerService(self.knowledge.retriever, self.generator, memory, AnsweringSettings(
                top_k=self.settings.retrieval.top_k, channel_voices=tuple(self.settings.voice.channels.items()),
                channel_sources=scoped, mode=mode, frame=cfg.frame),
                indexed_at=self.index_ops.indexed_at if cfg.show_indexed_at else None,
                active_voice=self.voices.active_voice, on_answered=lambda q, a: self.metrics.on_answer(q, a),
                composer=Composer(self.knowledge.embedder), voice_frames=self.voices.frame)
        return self._answers

    @property
    def insights(self) -> InsightsService:
        if self._insights is None:
            from bot.app.insights_service import InsightsService

            self._insights = InsightsService(self.feedback, lambda: self.knowledge.embedder)
        return self._insights

    def digest(self) -> WeeklyDigest:
        from bot.app.insights_service import WeeklyDigest

        cfg = self.settings.insights
        return WeeklyDigest(self.insights, self.notifier, cfg.digest_channel or self.settings.reindex.admin_channel,
                            cfg.digest_days)

    def schedule(self) -> NightlyReindex:
        """The scheduler's jobs (not started): the nightly re-index and the weekly digest."""
        from bot.app.scheduler import DigestJob

        cron = self.settings.insights.digest_schedule
        return self.index_ops.nightly(DigestJob(cron, self.digest().run) if cron else None)

    def state_database(self) -> StateDatabase:
        """PostgreSQL when `state.url` is set (replicas on several hosts), else the SQLite file."""
        state = self.settings.state
        if state.url:
            from bot.app.pg_state import PostgresStateDatabase

            return PostgresStateDatabase(state.url, state.pool_size, retry_away_s=state.retry_s)
        return SqliteStateDatabase(self.settings.feedback_path)

    @property
    def feedback(self) -> FeedbackStore:
        if self._feedback is None:
            cfg = self.settings.insights
            self._feedback = FeedbackStore(self.state_database(), on_rating=lambda r: self.metrics.on_rating(r),
                                           retention_days=cfg.retention_days, hash_user_ids=cfg.hash_user_ids)
        return self._feedback

    @property
    def metrics(self) -> Metrics:
        if self._metrics is None:
            from bot.app.metrics import Metrics

            store = self.knowledge.store
            self._metrics = Metrics(queue_depth=lambda: self.work_queue.depth,
                                    index_version=lambda: (live.seq if (live := store.live()) else None))
        return self._metrics

    @property
    def work_queue(self) -> WorkQueue:
        if self._work_queue is None:
            self._work_queue = WorkQueue(self.settings.serve.queue_size, self.settings.serve.workers,
                                         self.settings.serve.max_wait_s)
        return self._work_queue

    @property
    def commands(self) -> CommandRegistry:
        if self._commands is None:
            policy = AccessPolicy(self.settings.admins, trusted_platforms={"console", "cli"})
            self._commands = build_registry(policy, self.answers, self.index_ops, self.status_report,
                                            voices=self.voices, insights=lambda since: self.insights.summary(since))
        return self._commands

    @property
    def chat(self) -> ChatFlow:
        """The chat flow every platform adapter is handed."""
        if self._chat is None:
            # every question asked in chat keeps its vector, for grouping coverage gaps in insights
            self._chat = ChatFlow(self.commands, self.feedback, self.work_queue,
                                  on_answered=lambda question, _: self.insights.remember_question(question.text))
        return self._chat

    def warm_up(self) -> None:
        """Load what the first answer would otherwise wait a minute for: the index, the
        embedder, the generator (the bundled model is converted on its first load) and the
        active voice's greeting and sign-off (learned from its example replies)."""
        from bot.protocols import BASE_VOICE
        from bot.types import ChatMessage

        self.knowledge.retriever.search("warm up", k=1)
        answers = self.answers  # built: the composer and the voice registry
        try:
            self.generator.generate([ChatMessage(role="user", content="Hello")], max_new_tokens=1, voice=BASE_VOICE)
            active = self.voices.active_voice()
            if active and self.settings.answers.frame and answers.settings.mode == "composed":
                answers.framer.sign_off(active, active)
        except Exception as err:  # a remote engine not up yet: answers say so until it is
            logging.getLogger(__name__).warning("the generator did not answer while starting: %s", err)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """For /healthz: serving needs a live index; the queue depth shows whether it keeps up."""
        if not self.ready:
            return False, {"status": "starting", "queue_depth": 0, "queue_capacity": self.work_queue.capacity}
        try:
            live = self.knowledge.store.live()
        except Exception as err:  # e.g. object storage unreachable
            return False, {"status": "error", "error": f"index unreadable: {err}"}
        info = {"status": "ok" if live else "no index", "index_version": live.seq if live else None,
                "queue_depth": self.work_queue.depth, "queue_capacity": self.work_queue.capacity}
        return live is not None, info

    def evaluate_voice(self, name: str, log: Any = None) -> dict[str, Any]:
        """The voice's held-out figures (adapters_lora.voice_eval), and how its frame shows in
        real answers to its held-out questions, against the same answers without it."""
        from bot.app.voice_frame_eval import frame_report
        from bot.voice_frame import VoiceFrame

        report = self.voices.evaluate(name, self.generator, self.knowledge.embedder.embed_documents, log=log)
        frame = self.voices.frame(name) or VoiceFrame()
        if not self.knowledge.store.live():
            report["frame"] = {"learned": frame.summary(), "skipped": "no docs index to answer from: run `index`"}
        else:
            _, held = self.voices.examples(name)
            (log or (lambda m: None))(f"answering {len(held)} held-out questions with and without the voice ...")
            report["frame"] = {"learned": frame.summary(), **frame_report(self.answer_service_for, name, frame, held)}
        (self.voices.registry.path(name) / "eval.json").write_text(json.dumps(report, indent=2))
        return report

    def answer_service_for(self, voice: str | None) -> AnswerService:
        """An answering service like the bot's that answers in `voice` (None: no voice),
        whichever voice is active: for evaluations and benchmarks."""
        answers = self.answers
        return AnswerService(answers.retriever, answers.generator, settings=answers.settings,
                             active_voice=lambda: voice, composer=answers.composer, voice_frames=self.voices.frame)

    def run_console(self, user: str) -> None:
        from adapters.console import ConsoleChat

        ConsoleChat(self.commands, user_id=f"console:{user}").run()
