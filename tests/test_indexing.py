"""Incremental re-indexing on a real LanceDB with the real embedding model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge.chunking import ChunkSettings
from knowledge.documents import DocsRoot
from knowledge.embedding import Embedder
from knowledge.indexer import Indexer
from knowledge.retrieval import HybridRetriever
from knowledge.store import ChunkStore
from tests.helpers import write_docs


class RecordingEmbedder(Embedder):
    """The real model, also noting what it was asked to embed; can fail on demand."""

    def __init__(self, loaded: Embedder, fail_on_call: int | None = None) -> None:
        super().__init__(loaded.model_name, batch_size=loaded.batch_size, dtype=loaded.dtype)
        self._model = loaded.model
        self.embedded: list[str] = []
        self.calls = 0
        self.fail_on_call = fail_on_call

    def embed_documents(self, texts, progress=None) -> np.ndarray:
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise RuntimeError("simulated crash while embedding")
        self.embedded.extend(texts)
        return super().embed_documents(texts, progress)


DOCS = {
    "install.md": "# Install\n\n## macOS\n\nDrag the app to Applications.\n\n## Windows\n\nRun DriftSetup.msi.\n",
    "billing/plans.md": "# Plans\n\nThe Team plan costs 8 dollars per user per month.\n",
    "billing/refunds.txt": "Refunds\n\nFull refund within 14 days of the first payment.\n",
}


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "docs", DOCS)


def make_indexer(tmp_path: Path, embedder: Embedder, **chunking) -> tuple[Indexer, ChunkStore]:
    store = ChunkStore(str(tmp_path / "index"))
    return Indexer(store, embedder, ChunkSettings(**chunking) if chunking else None), store


def test_first_run_indexes_everything_and_records_settings(tmp_path: Path, docs: Path, embedder: Embedder) -> None:
    indexer, store = make_indexer(tmp_path, embedder)
    report = indexer.run([DocsRoot(docs)])
    assert sorted(report.added) == sorted(DOCS)
    assert report.full_rebuild == "no index yet"
    assert report.documents == 3 and report.chunks >= 4
    live = store.live()
    assert live is not None and live.settings["embedding_model"].startswith("sentence-transformers/all-MiniLM-L6-v2@")
    assert live.settings["chunking"]["max_tokens"] == 200


def test_rerun_reembeds_only_the_changed_document_and_drops_the_deleted_one(
    tmp_path: Path, docs: Path, embedder: Embedder
) -> None:
    spy = RecordingEmbedder(embedder)
    indexer, store = make_indexer(tmp_path, spy)
    first = indexer.run([DocsRoot(docs)])

    spy.embedded.clear()
    unchanged = indexer.run([DocsRoot(docs)])
    assert spy.embedded == [] and unchanged.unchanged == 3
    assert unchanged.version == first.version, "an unchanged run does not publish a new version"

    (docs / "billing/plans.md").write_text("# Plans\n\nThe Team plan now costs 9 dollars per user per month.\n")
    (docs / "billing/refunds.txt").unlink()
    second = indexer.run([DocsRoot(docs)])
    assert second.updated == ["billing/plans.md"] and second.deleted == ["billing/refunds.txt"]
    assert second.added == [] and second.unchanged == 1
    assert spy.embedded and all("9 dollars" in t for t in spy.embedded)
    indexed = store.indexed_documents()
    assert sorted(s for _, s in indexed) == ["billing/plans.md", "install.md"]

    retriever = HybridRetriever(store, embedder)
    top = retriever.search("How much is the Team plan?", k=1)[0]
    assert top.source == "billing/plans.md" and "9 dollars" in top.text


def test_a_rerun_over_unchanged_docs_never_loads_the_embedding_model(
    tmp_path: Path, docs: Path, embedder: Embedder
) -> None:
    # the nightly re-index of unchanged docs (and `supportbot index` run twice) costs no model load: seconds
    # of importing sentence-transformers and reading weights in a fresh process
    make_indexer(tmp_path, embedder)[0].run([DocsRoot(docs)])
    fresh = Embedder(embedder.model_name, batch_size=embedder.batch_size, dtype=embedder.dtype)
    report = make_indexer(tmp_path, fresh)[0].run([DocsRoot(docs)])
    assert report.unchanged == 3 and report.full_rebuild is None
    assert fresh._model is None and fresh._query_model is None


def test_bad_files_are_skipped_with_reasons_and_a_broken_known_doc_keeps_its_last_version(
    tmp_path: Path, docs: Path, embedder: Embedder
) -> None:
    indexer, store = make_indexer(tmp_path, embedder)
    indexer.run([DocsRoot(docs)])
    (docs / "empty.md").write_text("")
    (docs / "photo.png").write_bytes(b"\x89PNG\x00\x00")
    (docs / "install.md").write_bytes(b"# Install\n\n\xff\xfe broken \x00 bytes")
    report = indexer.run([DocsRoot(docs)])
    reasons = {s.source: s.reason for s in report.skipped}
    assert reasons["empty.md"] == "empty file"
    assert reasons["photo.png"] == "unsupported file type .png"
    assert "binary content" in reasons["install.md"]
    assert report.kept_previous == ["install.md"] and report.deleted == []
    assert "skipped install.md: binary content (NUL bytes) in a text file (previous version kept)" in report.summary()
    assert ("docs", "install.md") in store.indexed_documents()


def test_changed_chunking_forces_a_full_rebuild_and_says_so(tmp_path: Path, docs: Path, embedder: Embedder) -> None:
    indexer, store = make_indexer(tmp_path, embedder)
    indexer.run([DocsRoot(docs)])
    rebuilt, _ = make_indexer(tmp_path, embedder, max_tokens=120, overlap_tokens=16)
    report = rebuilt.run([DocsRoot(docs)])
    assert report.full_rebuild is not None and "chunking" in report.full_rebuild
    assert "Full rebuild: index settings changed" in report.summary()
    assert sorted(report.added) == sorted(DOCS) and report.documents == 3


def test_a_run_that_dies_midway_leaves_the_previous_index_answering(
    tmp_path: Path, docs: Path, embedder: Embedder
) -> None:
    indexer, store = make_indexer(tmp_path, embedder)
    indexer.run([DocsRoot(docs)])
    retriever = HybridRetriever(store, embedder)
    before = store.live()

    # Change two docs so the crashing run has already deleted their old rows when it dies.
    (docs / "billing/plans.md").write_text("# Plans\n\nThe Team plan costs 12 dollars per user per month.\n")
    (docs / "install.md").write_text("# Install\n\nInstall with the new universal installer.\n")
    crashing = Indexer(store, RecordingEmbedder(embedder, fail_on_call=1))
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.run([DocsRoot(docs)])

    assert store.live(refresh=True) == before
    fresh_reader = HybridRetriever(ChunkStore(str(tmp_path / "index")), embedder)
    for reader in (retriever, fresh_reader):
        hit = reader.search("How much is the Team plan?", k=1)[0]
        assert hit.source == "billing/plans.md" and "8 dollars" in hit.text
        assert {p.source for p in reader.search("install on Windows msi", k=5)} >= {"install.md"}

    recovered = indexer.run([DocsRoot(docs)])
    assert sorted(recovered.updated) == ["billing/plans.md", "install.md"]
    assert "12 dollars" in retriever.search("How much is the Team plan?", k=1)[0].text
    assert store.live().documents == 3


def test_two_roots_keep_separate_collections(tmp_path: Path, docs: Path, embedder: Embedder) -> None:
    other = write_docs(tmp_path / "handbook", {"install.md": "# Internal install\n\nUse the company image.\n"})
    indexer, store = make_indexer(tmp_path, embedder)
    report = indexer.run([DocsRoot(docs), DocsRoot(other)])
    assert "handbook/install.md" in report.added and "docs/install.md" in report.added
    retriever = HybridRetriever(store, embedder)
    scoped = retriever.search("install", k=5, collections=["handbook"])
    assert [p.collection for p in scoped] == ["handbook"]


def test_a_doc_replaced_by_a_link_out_of_the_docs_folder_is_dropped_not_kept(tmp_path: Path, embedder: Embedder) -> None:
    docs = write_docs(tmp_path / "docs", {"a.md": "# A\n\nThe kettle holds 1.7 litres.\n",
                                          "b.md": "# B\n\nThe warranty lasts 24 months.\n"})
    outside = write_docs(tmp_path / "outside", {"secret.md": "# Secret\n\nDB_PASSWORD=hunter2\n"})
    indexer, store = make_indexer(tmp_path, embedder)
    indexer.run([DocsRoot(docs)])
    (docs / "b.md").unlink()
    (docs / "b.md").symlink_to(outside / "secret.md")
    report = indexer.run([DocsRoot(docs)])
    assert [(s.source, s.reason) for s in report.skipped] == [
        ("b.md", "a link to a file outside the docs folder (not followed)")]
    assert report.deleted == ["b.md"] and report.kept_previous == []  # unlike an unreadable file, never kept
    assert set(store.indexed_documents()) == {("docs", "a.md")}


def test_a_link_to_another_doc_of_the_folder_is_indexed_once_under_the_file_s_own_name(
        tmp_path: Path, embedder: Embedder) -> None:
    """Debian's FAQ ships every `X.html` as a link to `X.en.html`: indexed under both names, the
    one page filled two of the three passages an answer reads. A link sorted before its target,
    a link to a hidden file and a link already indexed under its own name are covered too."""
    docs = write_docs(tmp_path / "docs", {
        "upgrade.en.html": "<html><body><h1>Upgrading</h1><p>Run apt full-upgrade after editing sources.list.</p></body></html>",
        "zz-kettle.md": "# Kettle\n\nThe kettle holds 1.7 litres.\n",
        ".draft.md": "# Draft\n\nThe warranty lasts 24 months.\n",
    })
    (docs / "upgrade.html").symlink_to(docs / "upgrade.en.html")
    (docs / "a-kettle.md").symlink_to("zz-kettle.md")  # sorted first, still an alias of the real file
    (docs / "warranty.md").symlink_to(docs / ".draft.md")  # the file itself is hidden: the link is its only name
    indexer, store = make_indexer(tmp_path, embedder)
    report = indexer.run([DocsRoot(docs)])
    assert sorted(report.added) == ["upgrade.en.html", "warranty.md", "zz-kettle.md"]
    assert report.skipped == []
    results = HybridRetriever(store, embedder).search("how do I upgrade with apt", k=3)
    assert [p.source for p in results].count("upgrade.en.html") == 1
    assert "upgrade.html" not in [p.source for p in results]
    # removing the link deletes nothing: only the file it names was indexed
    (docs / "a-kettle.md").unlink()
    assert indexer.run([DocsRoot(docs)]).deleted == []


def test_progress_starts_each_stage_at_zero_and_counts_files_chunks_and_rows(
    tmp_path: Path, docs: Path, embedder: Embedder
) -> None:
    """Each bar is announced before its work (so its rate and ETA count from the real start)
    and advances with the work: one step per file scanned, per embedding batch, per write."""
    calls: list[tuple[str, int, int]] = []
    indexer, _ = make_indexer(tmp_path, embedder)
    report = indexer.run([DocsRoot(docs)], progress=lambda stage, done, total: calls.append((stage, done, total)))
    chunks = report.chunks_embedded
    assert [c for c in calls if c[0] == "scanned"] == [("scanned", n, 3) for n in range(4)]
    embedded = [done for stage, done, total in calls if stage == "embedded"]
    assert embedded[0] == 0 and embedded[-1] == chunks and embedded == sorted(embedded)
    assert [c for c in calls if c[0] == "written"] == [("written", 0, chunks), ("written", chunks, chunks)]
    stages = [stage for stage, _, _ in calls]
    assert stages.index("embedded") > max(i for i, s in enumerate(stages) if s == "scanned")


def test_cli_progress_bars_name_their_units_and_stay_quiet_for_json(capsys) -> None:
    from bot.app.cli import _progress_printer

    assert _progress_printer(quiet=True) is None
    progress = _progress_printer(quiet=False)
    for stage, unit in (("scanned", "files"), ("fetched", "pages"), ("embedded", "chunks"), ("written", "rows")):
        progress(stage, 0, 4)
        progress(stage, 2, 4)
        progress(stage, 4, 4)
        progress(stage, 4, 4)  # a late repeat after the bar closed prints nothing more
    err = capsys.readouterr().err
    for stage, unit in (("scanned", "files"), ("fetched", "pages"), ("embedded", "chunks"), ("written", "rows")):
        assert err.count(f"{stage}: 100%") == 1 and f"4/4 [" in err and f" {unit}/s]" in err


def test_cli_progress_bar_starts_again_for_a_second_website(capsys) -> None:
    from bot.app.cli import _progress_printer

    progress = _progress_printer(quiet=False)
    for total in (3, 5):  # two website sources crawled one after the other
        for done in range(total + 1):
            progress("fetched", done, total)
    err = capsys.readouterr().err
    assert err.count("fetched: 100%") == 2 and "3/3 [" in err and "5/5 [" in err
