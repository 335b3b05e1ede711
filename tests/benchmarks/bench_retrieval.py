"""Index and retrieval benchmark on aws-docs-qa (2,757 pages, 100 questions).

Prints, all measured in this run on this machine:
- full index time and chunks/s, against raw `SentenceTransformer.encode` on a random sample
  of the same chunks (same model, dtype and batch size): the pipeline's overhead;
- an unchanged re-index as a fraction of the full one;
- retrieval latency p50/p95 (cold query cache);
- eval hit@5 / MRR@10 of the hybrid retriever beside two naive baselines on the same corpus:
  fixed 200-word chunks with vector search only, and the same chunks with BM25 only.

Run: .venv/bin/python -m tests.benchmarks.bench_retrieval [--sample N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bot.answering import AnswerService  # noqa: E402
from bot.evaluation import evaluate, load_qa, percentile, rank_metrics  # noqa: E402
from knowledge.documents import DocsRoot  # noqa: E402
from knowledge.embedding import Embedder  # noqa: E402
from knowledge.indexer import Indexer  # noqa: E402
from knowledge.retrieval import HybridRetriever  # noqa: E402
from knowledge.store import ChunkStore  # noqa: E402
from tests.benchmarks import baselines  # noqa: E402
from tests.benchmarks.aws_docs_qa import dataset_or_exit, docs_root, write_qa_jsonl  # noqa: E402


class _NoGenerator:
    """Retrieval-only eval never generates; this makes that explicit."""

    def generate(self, messages, max_new_tokens=None):
        raise AssertionError("retrieval benchmark must not generate")

    stream = generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=4000, help="chunks for the raw-encode baseline")
    parser.add_argument("--keep", type=Path, help="keep the index here (default: a temp dir)")
    args = parser.parse_args()
    dataset_or_exit()
    work = args.keep or Path(tempfile.mkdtemp(prefix="supportbot-bench-"))
    shutil.rmtree(work / "index", ignore_errors=True)
    qa_path = write_qa_jsonl(work / "qa.jsonl")
    items = load_qa(qa_path)

    embedder = Embedder()
    embedder.model  # load before timing: the raw baseline does not pay for loading either
    store = ChunkStore(str(work / "index"))
    indexer = Indexer(store, embedder)
    root = DocsRoot(docs_root())
    print(f"corpus: {root.path}  embedding dtype: {embedder.dtype}  torch threads: {_threads()}")

    t0 = time.perf_counter()
    full = indexer.run([root])
    full_s = time.perf_counter() - t0
    rate = full.chunks_embedded / full_s
    print(f"\nfull index: {full.documents} docs, {full.chunks_embedded} chunks in {full_s:.1f}s "
          f"= {rate:.1f} chunks/s  (stages ms: {_stages(full.timings_ms)})")

    texts = baselines.chunk_texts(store)
    random.seed(7)
    sample = random.sample(texts, min(args.sample, len(texts)))
    t0 = time.perf_counter()
    embedder.model.encode(sample, batch_size=embedder.batch_size, normalize_embeddings=True,
                          show_progress_bar=False)
    raw_rate = len(sample) / (time.perf_counter() - t0)
    print(f"raw SentenceTransformer.encode on {len(sample)} of the same chunks: {raw_rate:.1f} chunks/s")
    print(f"pipeline overhead over raw encode: {(raw_rate / rate - 1) * 100:+.1f}%  (target < 15%)")

    t0 = time.perf_counter()
    again = indexer.run([root])
    unchanged_s = time.perf_counter() - t0
    print(f"\nunchanged re-index: {unchanged_s:.2f}s = {unchanged_s / full_s * 100:.2f}% of the full index "
          f"(embedded {again.chunks_embedded}; target < 5%)")

    retriever = HybridRetriever(store, embedder)
    t0 = time.perf_counter()
    retriever.search("warm-up: load the live index into memory", k=10)
    print(f"\nfirst query after start (loads the live version into memory): {(time.perf_counter() - t0) * 1000:.0f} ms")
    embedder._query_cache.clear()
    latencies = []
    for item in items:
        t0 = time.perf_counter()
        retriever.search(item.question, k=10)
        latencies.append((time.perf_counter() - t0) * 1000)
    print(f"retrieval latency over {len(items)} questions (cold cache): p50 {percentile(latencies, 50):.1f} ms, "
          f"p95 {percentile(latencies, 95):.1f} ms, mean {statistics.mean(latencies):.1f} ms  (target p95 < 50 ms)")

    embedder._query_cache.clear()
    hybrid = evaluate(AnswerService(retriever, _NoGenerator()), items, generate=False)["retrieval"]

    t0 = time.perf_counter()
    naive = baselines.build_fixed_chunks(work / "baseline", docs_root(), embedder)
    print(f"\nbaseline index (fixed 200-word chunks): {naive.count} chunks in {time.perf_counter() - t0:.1f}s")
    expected = [set(item.sources) for item in items]
    rows = [("hybrid (supportbot)", hybrid)]
    for label, mode in (("vector only, 200-word chunks", "vector"), ("BM25 only, 200-word chunks", "fts")):
        # The top 10 chunks, read as the documents they come from (first rank counts).
        ranked = [naive.search(item.question, mode, 10) for item in items]
        rows.append((label, rank_metrics(ranked, expected)))

    print(f"\n{'retriever':<44} {'hit@1':>6} {'hit@5':>6} {'hit@10':>6} {'MRR@10':>7} {'nDCG@10':>8}")
    for label, m in rows:
        print(f"{label:<44} {m['hit@1']:>6.2f} {m['hit@5']:>6.2f} {m['hit@10']:>6.2f} {m['mrr@10']:>7.3f} "
              f"{m['ndcg@10']:>8.3f}")
    print("targets: hybrid hit@5 >= 0.92, MRR@10 >= 0.78, above both baselines")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def _stages(timings: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in timings.items() if k != "total")


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
