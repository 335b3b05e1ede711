"""Query latency with the index on local disk vs on an S3-compatible server (moto on
127.0.0.1), same index, same questions, same process.

The aws-docs-qa corpus is indexed once on local disk, the index folder is copied to the
bucket as is (Lance datasets are relocatable), and the 100 questions are run against both
(query-embedding cache cleared between the two runs). Prints p50/p95 per store, the first
query (which loads the live version's vectors into memory) and the ratio S3/local.

Run: .venv/bin/python -m tests.benchmarks.bench_s3 [--sample-docs]
"""

from __future__ import annotations

import argparse
import os
import sys
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bot.evaluation import load_qa, percentile  # noqa: E402
from bot.app.knowledge_parts import bundled_sample_docs  # noqa: E402
from knowledge.documents import DocsRoot  # noqa: E402
from knowledge.embedding import Embedder  # noqa: E402
from knowledge.indexer import Indexer  # noqa: E402
from knowledge.retrieval import HybridRetriever  # noqa: E402
from knowledge.store import ChunkStore  # noqa: E402
from tests import s3_server  # noqa: E402
from tests.benchmarks.aws_docs_qa import DATASET, docs_root, write_qa_jsonl  # noqa: E402


def upload(folder: Path, s3: s3_server.LocalS3, prefix: str) -> int:
    client = s3.client()
    count = 0
    for path in folder.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), s3_server.BUCKET, f"{prefix}/{path.relative_to(folder).as_posix()}")
            count += 1
    return count


def measure(store: ChunkStore, embedder: Embedder, questions: list[str]) -> tuple[float, list[float]]:
    embedder._query_cache.clear()  # both stores pay for embedding the same questions
    retriever = HybridRetriever(store, embedder)
    t0 = time.perf_counter()
    retriever.search(questions[0], k=5)
    first = (time.perf_counter() - t0) * 1000
    latencies = []
    for question in questions[1:]:
        t0 = time.perf_counter()
        retriever.search(question, k=5)
        latencies.append((time.perf_counter() - t0) * 1000)
    return first, latencies


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # figures show as they come, even into a file
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample-docs", action="store_true", help="the 20 bundled pages instead of aws-docs-qa")
    args = parser.parse_args()
    use_aws = not args.sample_docs and (DATASET / "documents").is_dir()
    work = Path(tempfile.mkdtemp(prefix="supportbot-bench-s3-"))
    s3 = s3_server.start()
    try:
        embedder = Embedder()
        local = ChunkStore(str(work / "index"))
        root = DocsRoot(docs_root(), "docs") if use_aws else DocsRoot(bundled_sample_docs(), "sample-docs")
        t0 = time.perf_counter()
        report = Indexer(local, embedder).run([root])
        print(f"corpus: {report.documents} pages, {report.chunks} chunks (indexed in {time.perf_counter() - t0:.0f} s)")
        if use_aws:
            questions = [item.question for item in load_qa(write_qa_jsonl(work / "qa.jsonl"))]
        else:
            questions = [line.split('"question": "')[1].split('"')[0] for line in
                         (Path(__file__).resolve().parents[2] / "knowledge" / "sample_qa" /
                          "driftwood_qa.jsonl").read_text().splitlines() if line.strip()]
        files = upload(work / "index", s3, "bench")
        print(f"copied the index to s3://{s3_server.BUCKET}/bench ({files} objects)")
        remote = ChunkStore(s3.uri("bench"), storage_options=s3.storage_options)

        rows = []
        for name, store in (("local disk", local), ("S3 (moto, loopback)", remote)):
            first, latencies = measure(store, embedder, questions)
            rows.append((name, first, percentile(latencies, 50), percentile(latencies, 95)))
        print(f"{len(questions) - 1} questions, top 5, {os.cpu_count()} cores")
        for name, first, p50, p95 in rows:
            print(f"  {name:<22} first query {first:8.1f} ms   p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        print(f"  S3 / local: p50 x{rows[1][2] / rows[0][2]:.2f}, p95 x{rows[1][3] / rows[0][3]:.2f}")
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
