"""Two replicas sharing state: 500 Slack events, 30% of them delivered again to the other
replica at the same moment (Slack's retries), on PostgreSQL (`state.url`) and, as the
baseline in the same run, on one host's SQLite file (WAL) shared by the same two processes.

Each replica is its own process running the store's real path for an event: the delivery
check (`first_delivery`), the thread check (`knows_conversation`) and, for a first delivery,
recording the answer (`record_answer`) — what the chat flow does around generation. Printed:
duplicates (an event answered twice) and lost events (never answered), the rows in the
database, and the shared-state overhead per answered event (p50/p99, ms) and per refused
redelivery. The bare rate beside it: one `SELECT 1` round trip to the server.
The server is a throw-away cluster from Debian's packages on 127.0.0.1, with fsync on (SQLite
syncs its WAL at each commit too), on the same disk as the SQLite file.

Run: .venv/bin/python -m tests.benchmarks.bench_shared_state [--events 500] [--redelivered 0.3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tests.pg_server import LocalPostgres, server_binaries


def _store(kind: str, where: str):
    from bot.feedback import FeedbackStore

    if kind == "postgresql":
        from bot.app.pg_state import PostgresStateDatabase

        return FeedbackStore(PostgresStateDatabase(where, pool_size=4))
    return FeedbackStore(Path(where))


def replica(kind: str, where: str, inbox: mp.Queue, outbox: mp.Queue) -> None:
    from bot.types import Answer, Citation, Question

    store = _store(kind, where)
    store.schema_version()  # opened and migrated before the clock starts
    outbox.put(("ready", None))
    answer = Answer(answer="Team is $8 per user per month [1].", abstained=False, context="[1] Plans",
                    citations=[Citation(n=1, source="billing/plans.md", title="Plans", score=0.8)])
    answered, first_ms, again_ms = [], [], []
    while (event := inbox.get()) is not None:
        started = time.perf_counter()
        conversation = f"slack:C1:{event}"
        if store.first_delivery(f"slack:{event}"):
            store.knows_conversation(conversation)
            store.record_answer(Question(text=f"How much is Team? ({event})", user_id="slack:UALICE",
                                         channel_id="C1", platform="slack", conversation_id=conversation), answer)
            first_ms.append((time.perf_counter() - started) * 1000)
            answered.append(event)
        else:
            again_ms.append((time.perf_counter() - started) * 1000)
    outbox.put(("done", (answered, first_ms, again_ms)))
    store.close()


def run(kind: str, where: str, events: int, redelivered: float) -> dict:
    ctx = mp.get_context("spawn")
    inboxes, outbox = [ctx.Queue(), ctx.Queue()], ctx.Queue()
    workers = [ctx.Process(target=replica, args=(kind, where, inbox, outbox)) for inbox in inboxes]
    for worker in workers:
        worker.start()
    for _ in workers:
        assert outbox.get(timeout=120)[0] == "ready"
    rng = random.Random(7)
    again = set(rng.sample(range(events), round(events * redelivered)))
    for n in range(events):
        first = n % 2
        inboxes[first].put(f"Ev{n:05d}")
        if n in again:  # the retry reaches the other replica while the first is still on it
            inboxes[1 - first].put(f"Ev{n:05d}")
    for inbox in inboxes:
        inbox.put(None)
    results = [outbox.get(timeout=600)[1] for _ in workers]
    for worker in workers:
        worker.join(60)
    store = _store(kind, where)
    rows = store.counts()["answers"]  # what both recorded, read after both finished
    store.close()
    answered = [e for r in results for e in r[0]]
    first_ms = sorted(ms for r in results for ms in r[1])
    again_ms = sorted(ms for r in results for ms in r[2])
    return {"deliveries": events + len(again), "duplicates": len(answered) - len(set(answered)),
            "lost": events - len(set(answered)), "rows": rows,
            "answer_p50": statistics.median(first_ms), "answer_p99": first_ms[int(len(first_ms) * 0.99) - 1],
            "again_p50": statistics.median(again_ms) if again_ms else 0.0}


def bare_round_trip_ms(url: str, n: int = 500) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            connection.execute("SELECT 1").fetchone()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--redelivered", type=float, default=0.3)
    args = parser.parse_args()
    bin_dir = server_binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries are not installed: run scripts/install-system-packages.sh")
    home = Path(tempfile.mkdtemp(prefix="bench-state-"))
    home.chmod(0o755)
    server = LocalPostgres(bin_dir, home / "cluster", fsync=True)  # durable like the SQLite file beside it
    server.init()
    server.start()
    try:
        rows = {"sqlite (one host, WAL file)": run("sqlite", str(home / "feedback.sqlite"), args.events,
                                                   args.redelivered),
                "postgresql (state.url)": run("postgresql", server.fresh_database(), args.events, args.redelivered)}
        bare = bare_round_trip_ms(server.url())
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"2 replicas, {args.events} events, {args.redelivered:.0%} delivered again to the other replica")
    print(f"{'backend':30} {'deliveries':>10} {'dup':>4} {'lost':>5} {'rows':>5} "
          f"{'answer p50 ms':>14} {'answer p99 ms':>14} {'retry p50 ms':>13}")
    for name, r in rows.items():
        print(f"{name:30} {r['deliveries']:>10} {r['duplicates']:>4} {r['lost']:>5} {r['rows']:>5} "
              f"{r['answer_p50']:>14.2f} {r['answer_p99']:>14.2f} {r['again_p50']:>13.2f}")
    print(f"bare: one SELECT 1 round trip to the server, p50 {bare:.3f} ms")


if __name__ == "__main__":
    main()
