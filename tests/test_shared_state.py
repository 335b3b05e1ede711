"""Replicas on several hosts sharing state in PostgreSQL (`state.url`), through real processes:
one re-index writer across hosts (two data dirs stand for two hosts: no file lock is shared),
and `doctor` on a reachable and an unreachable database."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bot.app.application import App
from bot.app.config import load_settings
from bot.app.knowledge_parts import bundled_sample_docs
from bot.commands import CommandContext
from bot.app.pg_state import _REINDEX_LOCK, PostgresReindexLock
from bot.feedback_schema import LATEST

REPO = Path(__file__).resolve().parents[1]


def host_env(data_dir: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")}
    env.update({"SUPPORTBOT_DATA_DIR": str(data_dir), "SUPPORTBOT_STATE__URL": url,
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    return env


def supportbot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_a_reindex_on_another_host_is_refused_with_who_holds_it_and_a_killed_holder_frees_it(
    tmp_path: Path, postgres, embedder
) -> None:
    url = postgres.fresh_database()
    docs = Path(shutil.copytree(bundled_sample_docs(), tmp_path / "docs"))
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    worker = subprocess.Popen([sys.executable, "-m", "tests.reindex_worker", str(host_a), str(docs), "scanned"],
                              cwd=REPO, env=host_env(host_a, url), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        paused = worker.stdout.readline().split()  # PAUSED scanned 20/20
        assert paused[:2] == ["PAUSED", "scanned"]
        refused = supportbot(host_env(host_b, url), "index", "--docs", str(docs))
        assert refused.returncode == 1
        assert "A re-index is already running (started by worker:alice (cli) at " in refused.stderr
        assert f"; scanned {paused[2]}). Try again when it has finished." in refused.stderr and "Traceback" not in refused.stderr
        replica = App(load_settings(None, data_dir=host_b, docs=[str(docs)], admins=["slack:UADMIN"],
                                    state={"url": url}), embedder=embedder)
        chat = replica.commands.run("reindex", "", CommandContext(user_id="slack:UADMIN", conversation_id="c1",
                                                                   platform="slack"))  # an admin's /reindex on B
        assert not chat.ok and chat.text.startswith("A re-index is already running (started by worker:alice (cli) at ")
        running = PostgresReindexLock(url).running()
        assert running is not None
        assert (running.started_by, running.pid, running.host) == ("worker:alice", worker.pid, socket.gethostname())
        worker.send_signal(signal.SIGKILL)
        worker.wait(60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(60)
    with psycopg.connect(url, autocommit=True) as waiter:  # returns once the server has dropped the dead session
        waiter.execute("SET lock_timeout = '30s'")
        waiter.execute("SELECT pg_advisory_lock(%s)", [_REINDEX_LOCK])
        waiter.execute("SELECT pg_advisory_unlock(%s)", [_REINDEX_LOCK])
    lock = PostgresReindexLock(url)
    assert lock.running() is None  # the row the dead holder left says nothing any more
    with lock.hold("slack:UADMIN", "chat"):
        held = PostgresReindexLock(url).running()
        assert held is not None and (held.started_by, held.trigger, held.pid) == ("slack:UADMIN", "chat", os.getpid())
    assert PostgresReindexLock(url).running() is None


def test_a_run_whose_lock_session_is_dropped_stops_rather_than_write_beside_another(postgres) -> None:
    from bot.state_db import StateDatabaseError

    url = postgres.fresh_database()
    lock = PostgresReindexLock(url)
    with pytest.raises(StateDatabaseError) as caught:
        with lock.hold("cli", "cli"):
            with psycopg.connect(url, autocommit=True) as admin:  # an idle timeout, a network blip: the session ends
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                              "AND ((classid::bigint << 32) | objid::bigint) = %s", [_REINDEX_LOCK])
            other = PostgresReindexLock(url)
            other.acquire("slack:UOTHER", "chat")  # another replica may take it now ...
            try:
                lock.update("embedded 10/20", force=True)  # ... so this run is told, and stops
            finally:
                other.release()
    assert str(caught.value).startswith(f"the re-index lock in {url} was lost (")
    assert "this run stops so that no other writer runs beside it" in str(caught.value)


def test_doctor_checks_the_shared_database_and_names_an_unreachable_one_in_one_fix_line(
    tmp_path: Path, postgres
) -> None:
    url = postgres.fresh_database()
    healthy = supportbot(host_env(tmp_path / "a", url), "doctor")
    assert f"ok   shared state database {url} (schema {LATEST})\n" in healthy.stdout

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"postgresql://postgres@127.0.0.1:{probe.getsockname()[1]}/supportbot"
    away = supportbot(host_env(tmp_path / "b", closed), "doctor")
    assert away.returncode == 1
    lines = [line for line in away.stdout.splitlines() if "shared state database" in line]
    assert len(lines) == 1
    assert lines[0].startswith(f"FIX  shared state database {closed}: the shared state database {closed} "
                               "cannot be used (")
    assert lines[0].endswith("check that PostgreSQL is running and reachable and that state.url is right "
                             "(the bot reconnects by itself)")
    assert "Traceback" not in away.stderr
    index = supportbot(host_env(tmp_path / "b", closed), "index", "--docs", str(bundled_sample_docs()))
    assert index.returncode == 1  # the re-index lock cannot be taken: said in one line, nothing written
    assert index.stderr.startswith(f"Error: the re-index lock in {closed} cannot be taken (") and "Traceback" not in index.stderr
    assert len(index.stderr.strip().splitlines()) == 1


def test_two_scheduler_processes_on_one_database_run_a_due_job_once(tmp_path: Path, postgres) -> None:
    url = postgres.fresh_database()
    workers = [subprocess.Popen([sys.executable, "-m", "tests.scheduler_worker", url, str(tmp_path / f"host-{n}")],
                                cwd=REPO, env=host_env(tmp_path / f"host-{n}", url), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (1, 2)]
    outputs = []
    for worker in workers:  # both started on the shared store; now both fire the same due run
        worker.stdin.write("2026-12-07T03:00:30+00:00\n")
        worker.stdin.flush()
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
        outputs.append(out.splitlines())
    ran = [line for lines in outputs for line in lines if line.startswith("RAN ")]
    assert len(ran) == 1
    with psycopg.connect(url) as db:
        claims = db.execute("SELECT job_id, due_at, pid FROM scheduled_runs").fetchall()
        stored = db.execute("SELECT id FROM apscheduler_jobs").fetchall()
    assert len(claims) == 1 and claims[0][0] == "nightly-reindex" and claims[0][1] == "2026-12-07T03:00:00+00:00"
    assert ran[0] == f"RAN {socket.gethostname()}:{claims[0][2]}"
    assert stored == [("nightly-reindex",)]  # the schedule lives in the database, not on a host
    assert outputs[0][-1] == outputs[1][-1]  # one next run for both
    assert outputs[0][-1].startswith("NEXT ") and outputs[0][-1].endswith("T03:00:00+00:00")
    from bot.app.pg_state import sqlalchemy_url
    from bot.app.scheduler import JOB_ID, stored_next_run

    # what `status` on any host reads: the schedule's next run, from the database
    assert stored_next_run(tmp_path / "nowhere.sqlite", JOB_ID, sqlalchemy_url(url)).isoformat() == outputs[0][-1][5:]


def _until_fired(worker: subprocess.Popen) -> list[str]:
    """What a scheduler worker printed for one firing."""
    lines = []
    while (line := worker.stdout.readline().strip()) != "FIRED":
        assert line, "the scheduler worker ended before the firing was done"
        lines.append(line)
    return lines


def test_when_the_scheduler_that_ran_a_job_is_killed_the_other_runs_the_next_one(tmp_path: Path, postgres) -> None:
    url = postgres.fresh_database()
    workers = [subprocess.Popen([sys.executable, "-m", "tests.scheduler_worker", url, str(tmp_path / f"host-{n}")],
                                cwd=REPO, env=host_env(tmp_path / f"host-{n}", url), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=(tmp_path / f"host-{n}.log").open("w"), text=True)
               for n in (1, 2)]
    try:
        assert [w.stdout.readline().strip() for w in workers] == ["STARTED", "STARTED"]
        for worker in workers:  # tonight's run comes due on both hosts
            worker.stdin.write("2026-12-07T03:00:30+00:00\n")
            worker.stdin.flush()
        said = [_until_fired(w) for w in workers]
        host = socket.gethostname()
        assert sorted(said) == [[], [f"RAN {host}:{workers[said[1] != []].pid}"]]  # one ran it, the other did not
        active, standby = (workers[0], workers[1]) if said[0] else (workers[1], workers[0])
        active.kill()  # the host that ran tonight's job dies, holding nothing
        assert active.wait(timeout=30) == -signal.SIGKILL
        standby.stdin.write("2026-12-08T03:00:30+00:00\n")  # tomorrow's run comes due on the host left
        standby.stdin.flush()
        assert _until_fired(standby) == [f"RAN {host}:{standby.pid}"]
        standby.stdin.close()
        assert standby.wait(timeout=60) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    with psycopg.connect(url) as db:
        claims = db.execute("SELECT due_at, pid FROM scheduled_runs ORDER BY due_at").fetchall()
    assert claims == [("2026-12-07T03:00:00+00:00", active.pid), ("2026-12-08T03:00:00+00:00", standby.pid)]


def test_state_migrate_copies_a_populated_sqlite_store_exactly_and_twice_changes_nothing(
    tmp_path: Path, postgres
) -> None:
    from bot.app.pg_state import PostgresStateDatabase
    from bot.feedback import FeedbackStore
    from tests.test_state_store import answer_to

    data, url = tmp_path / "data", postgres.fresh_database()
    local = FeedbackStore(data / "feedback.sqlite", retention_days=0)
    liked = answer_to(local, "How much is Team?", "Team is $8 [1].", conversation="slack:C1:1.0")
    wrong = answer_to(local, "Is there a trial?", "No [1].", user="slack:UBOB")
    local.rate(liked, "slack:UBOB", +1)
    local.rate(wrong, "slack:UCAROL", -1)
    local.comment(wrong, "slack:UADMIN", "wrong", correction="Yes: 14 days [1].", by_admin=True)
    local.escalate(wrong, "slack:UCAROL")
    local.save_vectors({"k1": b"\x00\x01\x02"}, "model-a")
    assert local.first_delivery("slack:Ev1")
    before = (local.counts(), local.voice_examples(), local.answers_between(0, 1e12), local.comments_between(0, 1e12))
    bob = local.stored_user_id("slack:UBOB")
    local.close()

    env = host_env(data, "")
    del env["SUPPORTBOT_STATE__URL"]
    first = supportbot(env, "state", "migrate", "--to", url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[:5] == [
        f"answers: 2 row(s), 2 new in {url}", f"feedback: 3 row(s), 3 new in {url}",
        f"escalations: 1 row(s), 1 new in {url}", f"question_vectors: 1 row(s), 1 new in {url}",
        f"deliveries: 1 row(s), 1 new in {url}"]
    again = supportbot(env, "state", "migrate", "--to", url)
    assert again.returncode == 0, again.stderr
    assert [line.split(", ")[1] for line in again.stdout.splitlines()[:5]] == [f"0 new in {url}"] * 5

    shared = FeedbackStore(PostgresStateDatabase(url), retention_days=0)
    assert (shared.counts(), shared.voice_examples(), shared.answers_between(0, 1e12),
            shared.comments_between(0, 1e12)) == before
    assert shared.stored_user_id("slack:UBOB") == bob  # the hashing key moved with the rows
    assert shared.knows_conversation("slack:C1:1.0") and not shared.first_delivery("slack:Ev1")
    assert shared.vectors(["k1"], "model-a") == {"k1": b"\x00\x01\x02"}
    shared.rate(liked, "slack:UBOB", -1)  # Bob changes his mind: his earlier 👍 is found and replaced
    shared.comment(liked, "slack:UDAVE", "new")  # a new row gets an id above the copied ones
    assert shared.counts() == {"answers": 2, "thumbs_up": 0, "thumbs_down": 2}
    shared.close()

    refused = supportbot(env, "state", "migrate", "--to", "mysql://db/x")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "Error: --to: it must start with postgresql:// (got 'mysql')"


def test_each_due_run_is_claimed_once_and_a_standby_claims_the_next(postgres) -> None:
    from datetime import datetime, timedelta, timezone

    from bot.app.pg_state import ScheduledRunClaims

    url = postgres.fresh_database()
    active, standby = ScheduledRunClaims(url), ScheduledRunClaims(url)
    tonight = datetime(2026, 12, 7, 3, tzinfo=timezone.utc)
    assert active.claim("nightly-reindex", tonight) is True
    assert standby.claim("nightly-reindex", tonight) is False  # fired too: told it ran elsewhere
    assert standby.claim("weekly-digest", tonight) is True  # another job's run is its own
    active.database.close()  # the active scheduler's host is gone
    assert standby.claim("nightly-reindex", tonight + timedelta(days=1)) is True
    standby.database.close()
