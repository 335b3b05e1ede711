"""Nightly re-index benchmark on aws-docs-qa (2,757 pages): what the 03:00 job costs.

Runs the same job the schedule runs (lock, history, eval gate when set) on a scratch copy of
the corpus and prints, against the full build measured in this run:
- a nightly run over the unchanged corpus (nothing should be re-embedded);
- a nightly run after 5% of the files changed (only those are re-embedded);
- the same 5% run with the eval gate on the 100 QA questions (the gate's cost).

Run: .venv/bin/python -m tests.benchmarks.bench_reindex [--changed 0.05]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bot.app.config import load_settings  # noqa: E402
from bot.reindex_job import SCHEDULE  # noqa: E402
from bot.app.application import App  # noqa: E402
from tests.benchmarks.aws_docs_qa import dataset_or_exit, docs_root, write_qa_jsonl  # noqa: E402


def change_files(docs: Path, fraction: float, seed: int) -> int:
    """Append a realistic edit (a new paragraph) to a random `fraction` of the pages."""
    files = sorted(p for p in docs.rglob("*.md"))
    chosen = random.Random(seed).sample(files, max(1, round(len(files) * fraction)))
    for path in chosen:
        with path.open("a", encoding="utf-8") as out:
            out.write(f"\n\n## Update {seed}\n\nThis page was revised; limits and defaults may differ by Region.\n")
    return len(chosen)


def nightly(app: App, label: str, full_s: float) -> float:
    t0 = time.perf_counter()
    report = app.index_ops.reindex(started_by="scheduler", trigger=SCHEDULE)
    seconds = time.perf_counter() - t0
    gate = f"; gate {report.timings_ms.get('gate', 0) / 1000:.1f}s" if report.gate else ""
    print(f"{label:<34} {seconds:8.1f} s  {seconds / full_s:7.2%} of full   "
          f"updated {len(report.updated)}, embedded {report.chunks_embedded} chunks, v{report.version}{gate}",
          flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changed", type=float, default=0.05, help="fraction of pages edited")
    args = parser.parse_args()
    dataset_or_exit()
    work = Path(tempfile.mkdtemp(prefix="supportbot-bench-reindex-"))
    try:
        docs = Path(shutil.copytree(docs_root(), work / "docs"))  # scratch copy: it gets edited
        qa = write_qa_jsonl(work / "qa.jsonl")
        app = App(load_settings(None, data_dir=work / "data", docs=[str(docs)]))
        app.knowledge.embedder.model  # load before timing

        t0 = time.perf_counter()
        full = app.index_ops.index(started_by="bench")
        full_s = time.perf_counter() - t0
        print(f"corpus: {full.documents} pages, {full.chunks} chunks; {os.cpu_count()} cores", flush=True)
        print(f"{'full build':<34} {full_s:8.1f} s  100.00% of full   embedded {full.chunks_embedded} chunks", flush=True)

        nightly(app, "nightly, nothing changed", full_s)
        changed = change_files(docs, args.changed, seed=1)
        nightly(app, f"nightly, {changed} pages ({args.changed:.0%}) changed", full_s)

        gated = App(load_settings(None, data_dir=work / "data", docs=[str(docs)],
                                  reindex={"gate_qa_file": str(qa)}), embedder=app.knowledge.embedder)
        changed = change_files(docs, args.changed, seed=2)
        nightly(gated, f"{changed} more pages + eval gate (100 q)", full_s)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
