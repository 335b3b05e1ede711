"""The index on object storage, end to end against a real S3-compatible server on 127.0.0.1:
one process indexes, another answers, and a re-index runs while the reader keeps answering."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app.config import load_settings
from bot.app.application import App
from bot.app.knowledge_parts import bundled_sample_docs
from tests import s3_server

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def s3():
    server = s3_server.start()
    yield server
    server.stop()


def test_one_process_indexes_to_s3_another_answers_and_keeps_answering_during_a_reindex(
        s3, tmp_path: Path, embedder) -> None:
    docs = Path(shutil.copytree(bundled_sample_docs(), tmp_path / "docs"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **s3.env("e2e")}
    writer_data = tmp_path / "scheduler-data"

    built = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(writer_data), "index", "--docs", str(docs)],
                           cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith("Index v1: 20 documents")
    listed = s3.client().list_objects_v2(Bucket=s3_server.BUCKET, Prefix="e2e/")
    assert any(o["Key"].startswith("e2e/index_manifest.lance/") for o in listed["Contents"])
    assert not (writer_data / "index").exists()  # nothing of the index on local disk

    reader = App(load_settings(None, data_dir=tmp_path / "replica-data",
                               index={"uri": s3.uri("e2e"), "storage_options": s3.storage_options}),
                 embedder=embedder)
    assert reader.knowledge.retriever.search("How much does the Team plan cost?", k=1)[0].source == "billing/plans.md"

    (docs / "setup" / "install-beos.md").write_text("# Install on BeOS\n\nBeOS needs a HaikuPort token.\n")
    plans = docs / "billing" / "plans.md"
    plans.write_text(plans.read_text().replace("$8 per user per month", "$11 per user per month"))
    worker = subprocess.Popen([sys.executable, "-m", "tests.reindex_worker", str(writer_data), str(docs), "written"],
                              cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().startswith("PAUSED written")  # new rows are on S3, not yet live
        reader.knowledge.store.live(refresh=True)
        during = reader.knowledge.retriever.search("How much does the Team plan cost?", k=1)[0]
        assert during.source == "billing/plans.md" and "$8 per user per month" in during.text
        assert reader.knowledge.retriever.search("HaikuPort token for BeOS", k=1)[0].source != "setup/install-beos.md"
    finally:
        worker.stdin.write("\n")
        worker.stdin.close()
        out = worker.stdout.read()
        worker.wait(600)
    assert "DONE v2" in out

    assert reader.knowledge.store.live(refresh=True).seq == 2  # replicas pick the new version up (within 2 s on their own)
    assert reader.knowledge.retriever.search("HaikuPort token for BeOS", k=1)[0].source == "setup/install-beos.md"
    assert "$11 per user per month" in reader.knowledge.retriever.search("How much does the Team plan cost?", k=1)[0].text
    status = reader.status_report.status()
    assert status["index_version"] == 2 and status["index_uri"] == s3.uri("e2e")
