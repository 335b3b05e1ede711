"""Vector search at 100k and 1M chunks: the store's IVF-PQ path against an exact scan.

The corpus is synthetic but built from real chunks: the chunks (text and vector) of an index
built once from aws-docs-qa (cached, see --base-index), repeated with each copy's vector moved
by Gaussian noise (sigma 0.03 per dimension: a copy stays ~0.85 cosine from its original),
so the vectors keep the real corpus's clusters without being duplicates. Rows go through the
product's own writer (`ChunkStore.begin / IndexWriter.add / stage / commit`), so the build
time includes the full-text index, the IVF-PQ training and the scalar indices.

Printed per size, all measured in this run: build time; query p50/p95 of the exact numpy scan
(the baseline: what the in-memory path costs at that size) and of the store's vector search
(`ChunkStore.candidates` with no text, the IVF-PQ path) and of the full hybrid candidate step
(vector + BM25 + page look-ups); recall@10 of the IVF-PQ search against the exact top 10; the
serving process's peak RSS against the raw vectors' size. Queries are the aws-docs-qa
questions, embedded once.

Run: .venv/bin/python -m tests.benchmarks.bench_scale [--sizes 100000 1000000] [--base-index DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from bot.evaluation import load_qa, percentile  # noqa: E402
from knowledge.documents import Chunk, DocsRoot  # noqa: E402
from knowledge.embedding import Embedder  # noqa: E402
from knowledge.indexer import Indexer  # noqa: E402
from knowledge.store import ChunkStore, VectorIndexSettings  # noqa: E402
from tests.benchmarks.aws_docs_qa import dataset_or_exit, docs_root, write_qa_jsonl  # noqa: E402

NOISE = 0.03
BATCH = 50_000
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "supportbot-bench"


def base_corpus(index_dir: Path) -> tuple[list[dict], np.ndarray]:
    """Chunks and vectors of the aws-docs-qa index (built once into the cache if absent)."""
    store = ChunkStore(str(index_dir))
    if store.live(refresh=True) is None:
        print(f"building the base index once into {index_dir} (aws-docs-qa, a few minutes)...")
        Indexer(store, Embedder()).run([DocsRoot(docs_root())])
    table = store.read_columns(["source", "title", "heading", "text", "position", "vector"])
    vectors = table.column("vector").combine_chunks()
    matrix = np.asarray(vectors.flatten(), dtype=np.float32).reshape(len(vectors), -1)
    rows = table.drop_columns(["vector"]).to_pylist()
    return rows, matrix


def synthetic_vectors(base: np.ndarray, size: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    copies = [base]
    while sum(len(c) for c in copies) < size:
        noisy = base + rng.normal(0.0, NOISE, base.shape).astype(np.float32)
        copies.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
    return np.concatenate(copies)[:size]


def _chunk_id(rows: list[dict], i: int) -> str:
    row = rows[i % len(rows)]
    return Chunk("bench", f"copy{i // len(rows)}/{row['source']}", "", "", "", row["position"], "", 0.0).chunk_id


def build(folder: Path, rows: list[dict], vectors: np.ndarray, min_rows: int) -> float:
    """Write every synthetic chunk through the product's writer; returns seconds."""
    store = ChunkStore(str(folder), vector_index=VectorIndexSettings(min_rows=min_rows))
    t0 = time.perf_counter()
    writer, _ = store.begin({"bench": "scale"}, lambda: vectors.shape[1])
    for start in range(0, len(vectors), BATCH):
        chunks = []
        for i in range(start, min(start + BATCH, len(vectors))):
            row = rows[i % len(rows)]
            copy = i // len(rows)
            chunks.append(Chunk("bench", f"copy{copy}/{row['source']}", row["title"], row["heading"], row["text"],
                                row["position"], "", 0.0))
        writer.add(chunks, vectors[start:start + len(chunks)])
    staged = writer.stage()
    writer.commit(staged, {})
    return time.perf_counter() - t0


def serve(folder: Path, queries: Path, size: int, min_rows: int) -> dict:
    """Runs in a fresh process: what serving this index costs (RSS) and how fast it answers."""
    libraries_mb = _rss_mb()
    store = ChunkStore(str(folder), vector_index=VectorIndexSettings(min_rows=min_rows))
    data = np.load(queries)
    vectors, texts = data["vectors"], json.loads(str(data["texts"]))
    store.candidates(vectors[0], "", 10)  # open the table, load the index
    found, vector_ms, hybrid_ms = [], [], []
    for vector, text in zip(vectors, texts):
        t0 = time.perf_counter()
        rows = store.candidates(vector, "", 10)
        vector_ms.append((time.perf_counter() - t0) * 1000)
        found.append(sorted(rows, key=lambda r: r["similarity"], reverse=True))
        t0 = time.perf_counter()
        store.candidates(vector, text, 100)
        hybrid_ms.append((time.perf_counter() - t0) * 1000)
    return {"mode": store.search_mode, "ids": [[r["chunk_id"] for r in rows[:10]] for rows in found],
            "vector_ms": vector_ms, "hybrid_ms": hybrid_ms,
            "rss_mb": _rss_mb("VmHWM"), "libraries_mb": libraries_mb}


def _rss_mb(field: str = "VmRSS") -> float:
    """This process's own figure (ru_maxrss would carry the parent's peak over from fork)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--base-index", type=Path, default=CACHE / "aws-index",
                        help="index of aws-docs-qa to take chunks and vectors from (built there once)")
    parser.add_argument("--work", type=Path, help="where the big indices go (default: a temp dir)")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        folder, queries, size, min_rows = args.serve
        print(json.dumps(serve(Path(folder), Path(queries), int(size), int(min_rows))))
        return
    dataset_or_exit()
    rows, base = base_corpus(args.base_index)
    work = args.work or Path(tempfile.mkdtemp(prefix="supportbot-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    items = load_qa(write_qa_jsonl(work / "qa.jsonl"))
    texts = [item.question for item in items]
    queries = Embedder().embed_documents(texts)
    np.savez(work / "queries.npz", vectors=queries, texts=json.dumps(texts))
    print(f"base: {len(base)} real chunks; queries: {len(texts)} aws-docs-qa questions; "
          f"cpu threads: {os.cpu_count()}")

    print(f"\n{'chunks':>9} {'build s':>8} {'exact p50/p95 ms':>17} {'ivf-pq p50/p95 ms':>18} "
          f"{'hybrid p50/p95 ms':>18} {'recall@10':>9} {'serving peak RSS MB':>20} {'raw vectors MB':>15}")
    for size in args.sizes:
        vectors = synthetic_vectors(base, size)
        exact_ms, exact_ids = [], []
        for query in queries:
            t0 = time.perf_counter()
            sims = vectors @ query
            top = np.argpartition(-sims, 10)[:10]
            exact_ms.append((time.perf_counter() - t0) * 1000)
            exact_ids.append({_chunk_id(rows, int(i)) for i in top})
        folder = work / f"index-{size}"
        shutil.rmtree(folder, ignore_errors=True)
        build_s = build(folder, rows, vectors, min_rows=min(size, 100_000))
        raw_mb = vectors.nbytes / 2**20
        del vectors
        out = subprocess.run([sys.executable, "-m", "tests.benchmarks.bench_scale", "--serve", str(folder),
                              str(work / "queries.npz"), str(size), str(min(size, 100_000))],
                             capture_output=True, text=True, check=True)
        served = json.loads(out.stdout.strip().splitlines()[-1])
        recall = np.mean([len(set(got) & want) / 10 for got, want in zip(served["ids"], exact_ids)])
        print(f"{size:>9} {build_s:>8.0f} {percentile(exact_ms, 50):>8.1f}/{percentile(exact_ms, 95):<8.1f} "
              f"{percentile(served['vector_ms'], 50):>9.1f}/{percentile(served['vector_ms'], 95):<8.1f} "
              f"{percentile(served['hybrid_ms'], 50):>9.1f}/{percentile(served['hybrid_ms'], 95):<8.1f} "
              f"{recall:>9.3f} {served['rss_mb']:>8.0f} ({served['libraries_mb']:.0f} libs) {raw_mb:>15.0f}   "
              f"({served['mode']})")
    print("targets at 1M: ivf-pq p95 < 50 ms, recall@10 >= 0.95, serving RSS well under the raw vectors "
          "('libs': the process with Python, NumPy, Arrow and LanceDB loaded, before the index is opened)")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
