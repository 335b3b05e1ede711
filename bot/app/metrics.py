"""Prometheus metrics for `/metrics`: what an operator graphs and alerts on.

Each App has its own registry (several apps in one process, as in tests, never collide).
The core reports through plain callbacks (answers, re-index runs, ratings); only this module
knows prometheus_client.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.reindex_job import RunRecord
from bot.types import Answer, Question

ANSWER_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
REINDEX_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600)


class Metrics:
    def __init__(self, queue_depth: Callable[[], int], index_version: Callable[[], int | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.questions = Counter("supportbot_questions", "Questions answered (abstentions included)",
                                 ["platform"], registry=r)
        self.abstentions = Counter("supportbot_abstentions",
                                   "Questions the docs did not answer (or the engine could not)", ["platform"],
                                   registry=r)
        self.answer_seconds = Histogram("supportbot_answer_seconds", "Time to a complete answer", ["platform"],
                                        buckets=ANSWER_BUCKETS, registry=r)
        self.queue = Gauge("supportbot_queue_depth", "Questions waiting for or being answered by the model",
                           registry=r)
        self.queue.set_function(queue_depth)
        self.reindex_runs = Counter("supportbot_reindex_runs", "Re-index runs by trigger and outcome",
                                    ["trigger", "outcome"], registry=r)
        self.reindex_seconds = Histogram("supportbot_reindex_seconds", "Re-index run duration",
                                         buckets=REINDEX_BUCKETS, registry=r)
        self.feedback = Counter("supportbot_feedback", "Answer ratings", ["rating"], registry=r)
        self.version = Gauge("supportbot_index_version", "Live index version (0: none)", registry=r)
        self.version.set_function(lambda: index_version() or 0)

    def on_answer(self, question: Question, answer: Answer) -> None:
        self.questions.labels(question.platform).inc()
        if answer.abstained:
            self.abstentions.labels(question.platform).inc()
        self.answer_seconds.labels(question.platform).observe(answer.timings_ms.get("total", 0.0) / 1000)

    def on_reindex(self, run: RunRecord) -> None:
        outcome = "failed" if not run.ok else "rejected" if run.rejected else "live" if run.went_live else "unchanged"
        self.reindex_runs.labels(run.trigger, outcome).inc()
        self.reindex_seconds.observe(run.finished_at - run.started_at)

    def on_rating(self, rating: int) -> None:
        self.feedback.labels("up" if rating > 0 else "down").inc()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
