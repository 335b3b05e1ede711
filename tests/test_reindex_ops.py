"""Re-index operations on the real stack (bundled embedder, LanceDB on tmp_path, real git,
real processes): schedule, one run at a time across processes, crash safety, eval gate,
rollback, git sources and freshness in `status`."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import bot.app.scheduler as scheduler_module
from bot.app.config import load_settings
from bot.reindex_lock import AlreadyRunning, ReindexLock
from bot.app.scheduler import JOB_ID, NightlyReindex, ScheduleSettings, stored_next_run
from bot.types import Question
from bot.app.application import App
from bot.app.knowledge_parts import bundled_sample_docs
from knowledge.embedding import Embedder
from tests.fakes import ScriptedGenerator

REPO = Path(__file__).resolve().parents[1]
SAMPLE_QA = REPO / "knowledge" / "sample_qa" / "driftwood_qa.jsonl"


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    """A private copy of the bundled sample docs that tests may edit."""
    return Path(shutil.copytree(bundled_sample_docs(), tmp_path / "docs"))


def make_app(data_dir: Path, embedder: Embedder, generator=None, **overrides) -> App:
    return App(load_settings(None, data_dir=data_dir, **overrides), embedder=embedder,  # the session's loaded model
               generator=generator)


def top_source(app: App, query: str) -> str:
    app.knowledge.store.live(refresh=True)
    return app.knowledge.retriever.search(query, k=1)[0].source


def top_text(app: App, query: str) -> str:
    app.knowledge.store.live(refresh=True)
    return app.knowledge.retriever.search(query, k=1)[0].text


# ----- schedule -------------------------------------------------------------------------

def test_schedule_uses_crontab_weekdays_zone_and_a_job_store_in_the_data_dir(tmp_path, embedder) -> None:
    app = make_app(tmp_path / "data", embedder, reindex={
        "schedule": "30 2 * * 0", "timezone": "Europe/Paris", "misfire_grace_minutes": 90})
    nightly = app.index_ops.nightly()
    assert str(nightly.scheduler._jobstores["default"].engine.url) == f"sqlite:///{tmp_path / 'data' / 'scheduler.sqlite'}"
    try:
        next_run = nightly.start()
        job = nightly.scheduler.get_job(JOB_ID)
        assert job.func is scheduler_module.run_scheduled_reindex
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 90 * 60)
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["minute"], fields["hour"], fields["day_of_week"]) == ("30", "2", "sun")  # crontab 0 = Sunday
        assert str(job.trigger.timezone) == "Europe/Paris"
        assert (next_run.weekday(), next_run.hour, next_run.minute) == (6, 2, 30)
        assert next_run > datetime.now(timezone.utc)
        assert stored_next_run(app.index_ops.jobstore_path) == next_run  # what `status` reads from any process
    finally:
        nightly.shutdown()


def test_default_schedule_is_three_oclock_every_night(tmp_path, embedder) -> None:
    nightly = make_app(tmp_path, embedder).index_ops.nightly()
    fields = {f.name: str(f) for f in nightly.trigger.fields}
    assert (fields["minute"], fields["hour"], fields["day"], fields["day_of_week"]) == ("0", "3", "*", "*")


def test_a_run_missed_while_down_happens_once_at_start(tmp_path) -> None:
    settings = ScheduleSettings("0 3 * * *", "UTC", 24 * 3600, tmp_path / "scheduler.sqlite")
    first = NightlyReindex(settings, lambda: None)
    next_run = first.start()
    first.shutdown()
    # The box was down for four nights: the store still says the run four nights ago is next.
    was_due = next_run - timedelta(days=4)
    with sqlite3.connect(settings.jobstore) as db:
        (blob,) = db.execute("SELECT job_state FROM apscheduler_jobs WHERE id = ?", (JOB_ID,)).fetchone()
        state = pickle.loads(blob)
        state["next_run_time"] = was_due
        db.execute("UPDATE apscheduler_jobs SET next_run_time = ?, job_state = ? WHERE id = ?",
                   (was_due.timestamp(), pickle.dumps(state), JOB_ID))

    runs: list[int] = []
    ran = threading.Event()

    def run() -> None:
        runs.append(1)
        ran.set()

    second = NightlyReindex(settings, run)
    try:
        second.start()  # back up: the owed run happens once, not four times
        assert ran.wait(60)
    finally:
        second.shutdown(wait=True)
    assert runs == [1]
    assert stored_next_run(settings.jobstore) > datetime.now(timezone.utc)


def test_calling_the_scheduled_job_reindexes_and_posts_the_summary(tmp_path, docs, embedder) -> None:
    app = make_app(tmp_path / "data", embedder, docs=[str(docs)], reindex={"admin_channel": "test:C-ADMINS"})
    posted: list[tuple[str, str]] = []
    app.notifier.register("test", lambda channel, text: posted.append((channel, text)))
    nightly = app.index_ops.nightly()
    nightly.start()
    try:
        scheduler_module.run_scheduled_reindex()  # exactly what APScheduler calls at 03:00
        assert len(posted) == 1
        channel, text = posted[0]
        assert channel == "C-ADMINS"
        assert text.startswith("Nightly re-index\nIndex v1: 20 documents, ")
        assert "Added 20, updated 0, deleted 0" in text

        shutil.rmtree(docs)  # a broken run is reported too, and the live index stays
        scheduler_module.run_scheduled_reindex()
        assert posted[1][1].startswith("Nightly re-index FAILED\nRe-index failed: FileNotFoundError: docs folder")
        assert app.knowledge.store.live(refresh=True).seq == 1

        status = app.status_report.status()
        assert "by scheduler (schedule" in status["last_scheduled_reindex"]
        assert status["next_scheduled_reindex"].startswith(str(nightly.next_run().astimezone().year))
    finally:
        nightly.shutdown()


# ----- one re-index at a time, across processes -----------------------------------------

def start_worker(data_dir: Path, docs: Path, stage: str) -> tuple[subprocess.Popen, str]:
    worker = subprocess.Popen([sys.executable, "-m", "tests.reindex_worker", str(data_dir), str(docs), stage],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = worker.stdout.readline()
    assert line.startswith("PAUSED"), f"worker did not reach {stage}: {line!r}"
    return worker, line.strip()


def test_a_second_process_is_told_who_runs_the_reindex(tmp_path, docs, embedder) -> None:
    data = tmp_path / "data"
    app = make_app(data, embedder, docs=[str(docs)])
    app.index_ops.index()
    (docs / "setup" / "install-beos.md").write_text("# Install on BeOS\n\nBeOS needs a HaikuPort token.\n")

    worker, paused = start_worker(data, docs, "scanned")
    try:
        cli = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(data), "index", "--docs", str(docs)],
                             cwd=REPO, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert cli.returncode == 1
        assert "A re-index is already running (started by worker:alice (cli) at " in cli.stderr
        assert "scanned 21/21" in cli.stderr
        with pytest.raises(AlreadyRunning) as busy:  # this process (chat, schedule) is told the same
            app.index_ops.reindex(started_by="slack:UADMIN")
        assert busy.value.job.started_by == "worker:alice" and busy.value.job.pid == worker.pid
        assert app.status_report.status()["reindex_running"].startswith("started by worker:alice (cli) at ")
    finally:
        worker.stdin.write("\n")
        worker.stdin.close()
        out = worker.stdout.read()
        worker.wait(120)
    assert "DONE v2" in out  # only the first asker re-indexed
    assert ReindexLock(data).running() is None
    assert top_source(app, "HaikuPort token for BeOS") == "setup/install-beos.md"


def test_a_reindex_killed_midway_leaves_the_live_index_answering_and_the_lock_free(tmp_path, docs, embedder) -> None:
    data = tmp_path / "data"
    app = make_app(data, embedder, docs=[str(docs)])
    assert app.index_ops.index().version == 1
    (docs / "setup" / "install-beos.md").write_text("# Install on BeOS\n\nBeOS needs a HaikuPort token.\n")
    plans = docs / "billing" / "plans.md"
    plans.write_text(plans.read_text().replace("$8 per user per month", "$11 per user per month"))

    worker, paused = start_worker(data, docs, "written")  # new rows written, not yet committed
    running = ReindexLock(data).running()
    assert running is not None and running.started_by == "worker:alice" and running.progress.startswith("written")
    worker.send_signal(signal.SIGKILL)
    worker.wait(60)

    reader = make_app(data, embedder, docs=[str(docs)])  # a bot process reading the index
    assert reader.knowledge.store.live(refresh=True).seq == 1
    assert "$8 per user per month" in top_text(reader, "How much does the Team plan cost?")
    assert top_source(reader, "HaikuPort token for BeOS") != "setup/install-beos.md"
    assert ReindexLock(data).running() is None  # the kernel dropped the dead holder's lock

    report = app.index_ops.index(started_by="cli:bob")
    assert report.version == 2 and report.added == ["setup/install-beos.md"]
    assert report.updated == ["billing/plans.md"]
    assert top_source(reader, "HaikuPort token for BeOS") == "setup/install-beos.md"
    assert "$11 per user per month" in top_text(reader, "How much does the Team plan cost?")
    assert ReindexLock(data).running() is None


# ----- eval gate and rollback -----------------------------------------------------------

def scramble(docs: Path) -> None:
    """Every page gets the content of a page from another part of the docs (a botched
    migration): the same words overall, on the wrong pages."""
    files = sorted(p for p in docs.rglob("*") if p.is_file())
    contents = [p.read_bytes() for p in files]
    half = len(files) // 2
    for path, content in zip(files, contents[half:] + contents[:half]):
        path.write_bytes(content)


def test_the_gate_keeps_a_scrambled_index_from_going_live_and_lets_the_real_one_through(
        tmp_path, docs, embedder) -> None:
    app = make_app(tmp_path / "data", embedder, docs=[str(docs)],
                   reindex={"gate_qa_file": str(SAMPLE_QA), "gate_max_drop": 0.05})
    first = app.index_ops.index()
    assert first.went_live and first.gate["accepted"] and first.gate["hit@5"] >= 0.9
    original = {p: p.read_bytes() for p in docs.rglob("*") if p.is_file()}

    scramble(docs)
    rejected = app.index_ops.index()
    assert rejected.rejected and not rejected.went_live
    assert rejected.gate["live_hit@5"] == first.gate["hit@5"]
    assert rejected.gate["hit@5"] < first.gate["hit@5"] - 0.05
    assert rejected.version == 1 and app.knowledge.store.live(refresh=True).seq == 1
    assert rejected.summary().startswith("New index NOT made live: hit@5 on 20 gate questions fell from ")
    assert top_source(app, "How much does the Team plan cost?") == "billing/plans.md"  # still the real docs

    for path, content in original.items():
        path.write_bytes(content)
    plans = docs / "billing" / "plans.md"
    plans.write_text(plans.read_text() + "\n## Nonprofits\n\nNonprofits get the Team plan at half price.\n")
    accepted = app.index_ops.index()
    assert accepted.went_live and accepted.version == 2 and accepted.updated == ["billing/plans.md"]
    assert "Eval gate passed: hit@5" in accepted.summary()
    assert top_source(app, "Do nonprofits get a discount?") == "billing/plans.md"


def test_rollback_restores_answers_from_an_earlier_version(tmp_path, docs, embedder) -> None:
    app = make_app(tmp_path / "data", embedder, docs=[str(docs)])
    app.index_ops.index()
    plans = docs / "billing" / "plans.md"
    plans.write_text(plans.read_text().replace("$8 per user per month", "$11 per user per month"))
    assert app.index_ops.index().version == 2
    assert "$11 per user per month" in top_text(app, "How much does the Team plan cost?")

    outcome = app.index_ops.rollback(None, started_by="cli:alice")
    assert (outcome.version, outcome.restored) == (3, 1)
    assert "$8 per user per month" in top_text(app, "How much does the Team plan cost?")
    rows = app.index_ops.index_versions()
    assert [(r["version"], r["live"], r["rollback_of"]) for r in rows] == [(3, True, 1), (2, False, None),
                                                                             (1, False, None)]
    with pytest.raises(ValueError, match="no index version v9"):
        app.index_ops.rollback(9)
    with pytest.raises(ValueError, match="is what is live already"):
        app.index_ops.rollback(1)

    # The next re-index starts from the restored version and picks the edit up again.
    report = app.index_ops.index()
    assert report.version == 4 and report.updated == ["billing/plans.md"]
    assert "$11 per user per month" in top_text(app, "How much does the Team plan cost?")


def test_rollback_from_the_command_line(tmp_path, docs, embedder) -> None:
    data = tmp_path / "data"
    app = make_app(data, embedder, docs=[str(docs)])
    app.index_ops.index()
    (docs / "legal" / "data-retention.txt").unlink()
    app.index_ops.index()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(data), "index", "rollback", "1"],
                         cwd=REPO, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Index v3 is live: the index as built in v1 (")
    listed = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(data), "index", "versions"],
                            cwd=REPO, capture_output=True, text=True, env=env).stdout.splitlines()
    assert listed[0].startswith("v3 (= v1) ") and listed[0].endswith("[live]")
    assert listed[1].endswith("[can roll back]")
    assert top_source(app, "How long do you keep deleted files?") == "legal/data-retention.txt"


# ----- git sources ----------------------------------------------------------------------

def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=Docs Bot", "-c", "user.email=docs@example.com", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_git_source_is_pulled_and_a_broken_one_keeps_its_last_good_checkout(tmp_path, embedder) -> None:
    origin = tmp_path / "handbook-origin"
    (origin / "docs").mkdir(parents=True)
    (origin / "docs" / "vacation.md").write_text("# Vacation\n\nEveryone gets 30 days of paid vacation.\n")
    (origin / "README.md").write_text("# Handbook repo\n\nNot part of the docs folder.\n")
    git("init", "-q", "-b", "main", cwd=origin)
    git("add", ".", cwd=origin)
    git("commit", "-q", "-m", "first", cwd=origin)

    app = make_app(tmp_path / "data", embedder, docs=[
        {"git": f"file://{origin}", "name": "handbook", "path": "docs", "branch": "main"},
        {"git": f"file://{tmp_path}/no-such-repo", "name": "wiki"},
    ])
    first = app.index_ops.index()
    assert first.added == ["vacation.md"] and first.documents == 1
    assert any(n.startswith("wiki: git clone of file://") and n.endswith("nothing to index from it yet")
               for n in first.notes)

    (origin / "docs" / "expenses.md").write_text("# Expenses\n\nFile expenses within 60 days.\n")
    git("add", ".", cwd=origin)
    git("commit", "-q", "-m", "expenses", cwd=origin)
    pulled = app.index_ops.index()
    assert pulled.added == ["expenses.md"]
    good = git("rev-parse", "--short=12", "HEAD", cwd=origin)

    shutil.move(origin, tmp_path / "moved-away")  # the remote is gone
    broken = app.index_ops.index()
    note = next(n for n in broken.notes if n.startswith("handbook: "))
    assert "git pull of file://" in note and note.endswith(f"indexed the last good checkout {good}")
    assert broken.deleted == [] and broken.documents == 2
    assert "Note: handbook: git pull of" in broken.summary()
    assert top_source(app, "How many vacation days do I get?") == "vacation.md"


# ----- freshness ------------------------------------------------------------------------

def test_status_shows_freshness_per_source_and_pending_changes(tmp_path, docs, embedder) -> None:
    app = make_app(tmp_path / "data", embedder, docs=[{"path": str(docs), "name": "driftwood"}])
    app.index_ops.index(started_by="cli:alice")
    (docs / "setup" / "install-beos.md").write_text("# Install on BeOS\n\nBeOS needs a HaikuPort token.\n")
    (docs / "legal" / "data-retention.txt").unlink()
    plans = docs / "billing" / "plans.md"
    plans.write_text(plans.read_text() + "\nPrices changed.\n")
    os.utime(docs / "api" / "files.md")  # touched, not changed: not counted

    status = app.status_report.status()
    assert status["index_version"] == 1 and status["documents"] == 20
    assert status["sources"] == {"driftwood": f"20 documents, {status['chunks']} chunks"}
    assert status["changed_since_build"] == "1 added, 1 modified, 1 deleted"
    assert "by cli:alice (cli" in status["last_reindex"] and status["last_scheduled_reindex"] == "never"
    assert "once a scheduler runs" in status["next_scheduled_reindex"]


def test_answers_can_say_when_the_docs_were_indexed(tmp_path, docs, embedder) -> None:
    app = make_app(tmp_path / "data", embedder, ScriptedGenerator("The Team plan costs $8 per user per month [1]."),
                   docs=[str(docs)], answers={"show_indexed_at": True})
    app.index_ops.index()
    answer = app.answers.answer(Question(text="How much does the Team plan cost?"))
    built = app.status_report.status()["index_built_at"]
    assert answer.indexed_at == built
    assert answer.contract_json()["indexed_at"] == built

