"""`supportbot eval`: retrieval quality by source document, abstention, latency.

QA files are JSONL, one {"question", "answer", "sources": [...]} per line, with sources
relative to the docs root. A bad line is reported with its number and nothing is run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.answer_metrics import garbled, invented_identifiers, recall, word_count, yes_no_of
from bot.answering import AnswerService
from bot.jsonl import UnreadableFile, read_objects
from bot.protocols import Retriever
from bot.types import Answer, Question
from bot.voice_frame import VoiceFrame

KS = (1, 5, 10)


@dataclass(frozen=True)
class QAItem:
    question: str
    answer: str
    sources: tuple[str, ...]
    yes_no: str | None = None  # "Yes" / "No" when the question is one and the docs settle it


class QAFileError(ValueError):
    pass


def load_qa(path: Path) -> list[QAItem]:
    items: list[QAItem] = []
    try:
        rows, errors = read_objects(path)
    except UnreadableFile as err:
        raise QAFileError(f"{path}: {err}") from None
    for number, row in rows:
        question, sources = row.get("question"), row.get("sources")
        if not isinstance(question, str) or not question.strip():
            errors.append(f"line {number}: missing 'question'")
            continue
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
            errors.append(f"line {number}: 'sources' must be a non-empty list of paths")
            continue
        yes_no = row.get("yes_no")
        if yes_no not in (None, "Yes", "No"):
            errors.append(f"line {number}: 'yes_no' must be \"Yes\", \"No\" or null")
            continue
        items.append(QAItem(question, str(row.get("answer", "")), tuple(sources), yes_no))
    if errors:
        errors.sort(key=lambda e: int(e.split(":", 1)[0].removeprefix("line ")))
        raise QAFileError(f"{path}: " + "; ".join(errors[:10]) + (" ..." if len(errors) > 10 else ""))
    if not items:
        raise QAFileError(f"{path}: no questions")
    return items


def top_ten(docs: Sequence[str]) -> list[str]:
    """The first ten distinct documents of a ranking (a document listed twice counts once, at
    its first rank)."""
    return list(dict.fromkeys(docs))[:10]


def first_relevant(docs: Sequence[str], relevant: set[str]) -> int | None:
    """The 0-based rank of the first relevant document in `top_ten(docs)`, or None."""
    return next((i for i, d in enumerate(top_ten(docs)) if d in relevant), None)


def rank_metrics(ranked: Sequence[Sequence[str]], expected: Sequence[set[str]]) -> dict[str, float]:
    """hit@k, MRR@10 and binary-relevance nDCG@10 over ranked document lists (a document
    listed twice counts once, at its first rank)."""
    n = len(ranked)
    hits = {k: 0 for k in KS}
    mrr = ndcg = 0.0
    for docs, relevant in zip(ranked, expected):
        docs = top_ten(docs)
        first = first_relevant(docs, relevant)
        for k in KS:
            hits[k] += first is not None and first < k
        if first is not None:
            mrr += 1.0 / (first + 1)
        dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(docs) if d in relevant)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
        ndcg += dcg / ideal if ideal else 0.0
    out = {f"hit@{k}": round(hits[k] / n, 4) for k in KS}
    out["mrr@10"] = round(mrr / n, 4)
    out["ndcg@10"] = round(ndcg / n, 4)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return round(ordered[index], 1)


def retrieval_metrics(retriever: Retriever, items: Sequence[QAItem]) -> dict[str, float]:
    """Ranking metrics only: what the eval gate compares between index versions."""
    ranked, expected = [], []
    for item in items:
        relevant = set(item.sources)
        passages = retriever.search(item.question, k=10)
        ranked.append([_match_name(p.collection, p.source, relevant) for p in passages])
        expected.append(relevant)
    return rank_metrics(ranked, expected)


def evaluate(service: AnswerService, items: Sequence[QAItem], generate: bool = True,
             on_item: Callable[[int, int], None] | None = None) -> dict:
    ranked: list[list[str]] = []
    expected: list[set[str]] = []
    latencies: list[float] = []
    abstained = 0
    cited_expected = answered = 0
    quality = AnswerQuality()
    for i, item in enumerate(items, 1):
        relevant = set(item.sources)
        t0 = time.perf_counter()
        passages = service.retriever.search(item.question, k=10)
        retrieval_ms = (time.perf_counter() - t0) * 1000
        ranked.append([_match_name(p.collection, p.source, relevant) for p in passages])
        expected.append(relevant)
        if generate:
            question = Question(text=item.question, conversation_id=f"eval-{i}", platform="eval")
            answer = service.answer(question)
            service.memory.forget(question.conversation_id)
            latencies.append(answer.timings_ms.get("total", 0.0))
            if answer.abstained:
                abstained += 1
            else:
                answered += 1
                cited_expected += any(c.source in relevant for c in answer.citations)
            quality.add(item, answer, service.framer.frame(answer.voice))
        else:
            latencies.append(retrieval_ms)
            top = passages[: service.settings.top_k]
            abstained += not any(p.relevant for p in top)
        if on_item:
            on_item(i, len(items))
    report = {
        "questions": len(items),
        "retrieval": rank_metrics(ranked, expected),
        "abstained": round(abstained / len(items), 4),
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "mean_latency_ms": round(sum(latencies) / len(latencies), 1),
        "generated": generate,
    }
    if generate:
        report["answers"] = {"cited_expected_source": round(cited_expected / answered, 4) if answered else 0.0,
                             **quality.report()}
    return report


def _match_name(collection: str, source: str, relevant: set[str]) -> str:
    """Sources may be given relative to the docs root, or prefixed with the collection name."""
    prefixed = f"{collection}/{source}"
    return prefixed if prefixed in relevant and source not in relevant else source


class AnswerQuality:
    """Answer metrics over an eval run: reference recall (items with an answer), mean words,
    invented identifiers and garbled endings (answered items), yes/no accuracy (labelled items)."""

    def __init__(self) -> None:
        self.recalls: list[float] = []
        self.words: list[int] = []
        self.invented = self.garbled = self.answered = 0
        self.yes_no: list[bool] = []

    def add(self, item: QAItem, answer: Answer, frame: VoiceFrame | None = None) -> None:
        """`frame`: the answering voice's greeting and sign-off (names and emoji there are the
        team's words, not invented identifiers, and a sign-off may end on an emoji)."""
        frame = frame or VoiceFrame()
        if item.answer.strip():
            self.recalls.append(0.0 if answer.abstained else recall(answer.answer, item.answer))
        if item.yes_no:
            self.yes_no.append(not answer.abstained and yes_no_of(answer.answer) == item.yes_no)
        if answer.abstained:
            return
        self.answered += 1
        self.words.append(word_count(answer.answer))
        self.invented += bool(invented_identifiers(answer.answer, [answer.context, *frame.texts()]))
        self.garbled += garbled(frame.unsigned(answer.answer)) is not None

    def report(self) -> dict[str, float | None]:
        def share(count: int) -> float:
            return round(count / self.answered, 4) if self.answered else 0.0

        return {
            "recall": round(sum(self.recalls) / len(self.recalls), 4) if self.recalls else None,
            "mean_words": round(sum(self.words) / len(self.words), 1) if self.words else 0.0,
            "invented_identifiers": share(self.invented),
            "garbled": share(self.garbled),
            "yes_no_accuracy": round(sum(self.yes_no) / len(self.yes_no), 4) if self.yes_no else None,
        }
