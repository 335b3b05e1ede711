"""Second-stage candidates over retrieval's top pages, measured beside today's order.

Issue 27 asks for "the right section first": a second stage over the hybrid retriever's top
candidates that needs no labels. This benchmark measures the label-free, structure-only
signals the index already holds, each added to today's fused page score with one weight:

- page opening: cosine of the page's opening chunk (what the page as a whole is about);
- page centroid: cosine of the mean of all the page's chunk vectors;
- section window: cosine of the best chunk summed with its neighbours in the page (the
  neighbouring sections read together);
- page soft-max: a log-sum-exp of every chunk of the page (several good sections lift a page);
- heading: cosine of the best chunk's "title > heading" alone (headings read like questions);
- title: cosine of the page title alone;
- RRF: reciprocal-rank fusion of today's order with the page-opening and centroid orders.

Each weight is chosen on the tune halves of every corpus together (sum of hit@1 and MRR@10)
and reported on both halves; the report halves were never read while choosing. Corpora as in
bench_retrieval (sample docs, git-doc, the Debian handbook, aws-docs-qa when present).

Run: .venv/bin/python -m tests.benchmarks.bench_rerank [--keep DIR] [--aws-index DIR]
     [--corpora sample,git,handbook,aws]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bot.evaluation import percentile, rank_metrics  # noqa: E402
from knowledge.documents import DocsRoot, heading_location  # noqa: E402
from knowledge.embedding import Embedder  # noqa: E402
from knowledge.indexer import Indexer  # noqa: E402
from knowledge.retrieval import HybridRetriever  # noqa: E402
from knowledge.store import ChunkStore  # noqa: E402
from tests.benchmarks.bench_retrieval import HANDBOOK_DOCS, Corpus, _corpora  # noqa: E402

TOP_PAGES = 10  # the second stage reorders this many pages
WEIGHTS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)


@dataclass
class Page:
    source: str
    fused: float  # today's score: the page's best fused chunk
    signals: dict[str, float]


@dataclass
class Question:
    half: str
    expected: set[str]
    pages: list[Page]  # today's order, top TOP_PAGES


class Vectors:
    """Every chunk vector of an index, with each page's chunks and centroid."""

    def __init__(self, store: ChunkStore) -> None:
        table = store.read_columns(["chunk_id", "source", "heading", "position", "vector"])
        ids, self.sources = table.column("chunk_id").to_pylist(), table.column("source").to_pylist()
        self.headings, positions = table.column("heading").to_pylist(), table.column("position").to_pylist()
        flat = table.column("vector").combine_chunks().flatten()
        self.matrix = np.asarray(flat, dtype=np.float32).reshape(len(ids), -1)
        self.index_of = {chunk_id: i for i, chunk_id in enumerate(ids)}
        self.at = {(source, position): i for i, (source, position) in enumerate(zip(self.sources, positions))}
        self.pages: dict[str, list[int]] = {}
        for i, source in enumerate(self.sources):
            self.pages.setdefault(source, []).append(i)
        self.centroids = {source: _unit(self.matrix[rows].mean(axis=0)) for source, rows in self.pages.items()}

    def signals(self, vector: np.ndarray, best: dict) -> dict[str, float]:
        source, i = best["source"], self.index_of[best["chunk_id"]]
        window = [i] + [self.at[(source, best["position"] + o)] for o in (-1, 1) if (source, best["position"] + o) in self.at]
        sims = self.matrix[self.pages[source]] @ vector
        return {
            "page opening": best["page_similarity"],
            "page centroid": float(self.centroids[source] @ vector),
            "section window": float(_unit(self.matrix[window].sum(axis=0)) @ vector),
            "page soft-max": float(np.log(np.exp(sims / 0.05).sum()) * 0.05),
        }


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) or 1.0)


def collect(corpus: Corpus, store: ChunkStore, embedder: Embedder) -> tuple[list[Question], list[float]]:
    retriever, vectors = HybridRetriever(store, embedder), Vectors(store)
    halves = {i: "tune" for i in corpus.half("tune")} | {i: "report" for i in corpus.half("report")}
    questions, stage_ms = [], []
    for i, item in enumerate(corpus.questions):
        vector = embedder.embed_query(item.question)
        rows = store.candidates(vector, item.question, retriever.settings.candidates)
        documents = retriever.score_documents(item.question, rows)[:TOP_PAGES]
        t0 = time.perf_counter()
        pages = [Page(scored[0][1]["source"], scored[0][0], vectors.signals(vector, scored[0][1]))
                 for scored in documents]
        locations = [heading_location(s[0][1]["title"], s[0][1]["heading"]) for s in documents]
        titles = [s[0][1]["title"] for s in documents]
        sims = embedder.similarities(item.question, locations + titles)
        for n, page in enumerate(pages):
            page.signals["heading"] = sims[n]
            page.signals["title"] = sims[len(pages) + n]
        stage_ms.append((time.perf_counter() - t0) * 1000)
        questions.append(Question(halves[i], set(item.sources), pages))
    return questions, stage_ms


Order = Callable[[list[Page]], list[str]]


def weighted(signal: str, weight: float) -> Order:
    return lambda pages: [p.source for p in sorted(pages, key=lambda p: -(p.fused + weight * p.signals[signal]))]


def reciprocal_rank(k: int) -> Order:
    def order(pages: list[Page]) -> list[str]:
        score = {p.source: 0.0 for p in pages}
        for key in (lambda p: p.fused, lambda p: p.signals["page opening"], lambda p: p.signals["page centroid"]):
            for rank, page in enumerate(sorted(pages, key=key, reverse=True)):
                score[page.source] += 1 / (k + rank + 1)
        return sorted(score, key=lambda s: -score[s])
    return order


def measure(questions: list[Question], order: Order, half: str) -> dict[str, float]:
    chosen = [q for q in questions if q.half == half]
    return rank_metrics([order(q.pages) for q in chosen], [q.expected for q in chosen])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path, help="keep (and reuse) indices here (default: a temp dir)")
    parser.add_argument("--aws-index", type=Path, help="an aws-docs-qa index built by this code, read only")
    parser.add_argument("--git-docs", type=Path, default=Path("/usr/share/doc/git-doc"))
    parser.add_argument("--handbook", type=Path, default=HANDBOOK_DOCS)
    parser.add_argument("--corpora", default="sample,git,handbook,aws")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="supportbot-rerank-"))
    work.mkdir(parents=True, exist_ok=True)
    wanted = set(args.corpora.split(","))
    embedder = Embedder()
    measured: dict[str, list[Question]] = {}
    for corpus in _corpora(work, args.git_docs, args.handbook):
        name = corpus.key
        if name not in wanted:
            continue
        if name == "aws" and args.aws_index:
            store = ChunkStore(str(args.aws_index))
        else:
            store = ChunkStore(str(work / corpus.name / "index"))
            Indexer(store, embedder).run([DocsRoot(corpus.docs)])
        measured[name], stage_ms = collect(corpus, store, embedder)
        print(f"{name}: {len(measured[name])} questions; second-stage signals p50 {percentile(stage_ms, 50):.1f} ms, "
              f"p95 {percentile(stage_ms, 95):.1f} ms per question", flush=True)

    def tune_score(order: Order) -> float:
        return sum(m["hit@1"] + m["mrr@10"] for m in (measure(qs, order, "tune") for qs in measured.values()))

    today: Order = lambda pages: [p.source for p in pages]  # noqa: E731
    candidates: dict[str, Order] = {"today's order": today}
    for signal in ("page opening", "page centroid", "section window", "page soft-max", "heading", "title"):
        weight = max(WEIGHTS, key=lambda w: tune_score(weighted(signal, w)))
        candidates[f"+ {weight} x {signal}"] = weighted(signal, weight)
    k = max((1, 10, 60), key=lambda k: tune_score(reciprocal_rank(k)))
    candidates[f"RRF (k={k}) today/opening/centroid"] = reciprocal_rank(k)

    print(f"\n{'corpus / half':<18} {'order':<40} {'hit@1':>6} {'hit@5':>6} {'MRR@10':>7}")
    for name, questions in measured.items():
        for half in ("tune", "report"):
            for label, order in candidates.items():
                m = measure(questions, order, half)
                print(f"{name + ' / ' + half:<18} {label:<40} {m['hit@1']:>6.2f} {m['hit@5']:>6.2f} {m['mrr@10']:>7.3f}")
        print()
    print("each weight chosen on the tune halves of all corpora together (hit@1 + MRR@10); target: report-half "
          "hit@1 >= today's + 0.10, never below today's on any set")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
