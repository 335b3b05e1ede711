"""Locate the shared aws-docs-qa dataset and turn its CSV into `supportbot eval` JSONL.

The dataset is read in place from ../shared (never copied into the project); benchmarks
skip with a message when it is absent.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "aws-docs-qa"


def dataset_or_exit() -> Path:
    if not (DATASET / "documents").is_dir():
        print(f"SKIP: aws-docs-qa dataset not found at {DATASET}")
        sys.exit(0)
    return DATASET


def docs_root() -> Path:
    return DATASET / "documents"


def write_qa_jsonl(target: Path) -> Path:
    """QA_true.csv -> JSONL with sources relative to documents/ ("guide/doc_source/Page.md")."""
    rows = []
    with open(DATASET / "QA_true.csv", encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            guide, _, page = row["Document_True"].strip().partition("/")
            source = f"{guide}/doc_source/{page}"
            if not (docs_root() / source).is_file():
                raise FileNotFoundError(f"QA source missing from the corpus: {source}")
            rows.append({"question": row["Question"].strip(), "answer": row["Answer_True"].strip(),
                         "sources": [source]})
    target.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return target
