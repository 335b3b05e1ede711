"""The state store's contract, run on both backends: the SQLite file (one box) and a real
PostgreSQL server (replicas on several hosts, `state.url`). Two store objects on one database
stand for two replicas: what one records, the other sees."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.feedback import FeedbackStore, UnknownAnswer, question_key
from bot.feedback_schema import LATEST
from bot.types import Answer, Citation, Question

Replica = Callable[..., FeedbackStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def replica(request: pytest.FixtureRequest, tmp_path: Path):
    """Opens a store on this test's database: each call is another replica sharing it."""
    if request.param == "postgresql":
        from bot.app.pg_state import PostgresStateDatabase

        url = request.getfixturevalue("postgres").fresh_database()
        make = lambda: PostgresStateDatabase(url, pool_size=2)  # noqa: E731
    else:
        from bot.state_db import SqliteStateDatabase

        make = lambda: SqliteStateDatabase(tmp_path / "feedback.sqlite")  # noqa: E731
    opened: list[FeedbackStore] = []

    def open_store(**options) -> FeedbackStore:
        opened.append(FeedbackStore(make(), **options))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def answer_to(store: FeedbackStore, text: str, reply: str, user: str = "slack:UALICE",
              conversation: str | None = None) -> str:
    answer = Answer(answer=reply, abstained=False, voice="crew-v1", context="[1] Plans\nTeam is $8.",
                    citations=[Citation(n=1, source="billing/plans.md", title="Plans", score=0.8)],
                    timings_ms={"total": 412.5})
    return store.record_answer(Question(text=text, user_id=user, channel_id="C1", platform="slack",
                                        conversation_id=conversation or ""), answer)


def test_what_one_replica_records_another_rates_and_exports(replica: Replica) -> None:
    a, b = replica(), replica()
    liked = answer_to(a, "How much is Team?", "Team is $8 per user [1].")
    corrected = answer_to(a, "Is there a trial?", "No [1].")
    b.rate(liked, "slack:UBOB", +1)
    b.rate(liked, "slack:UBOB", +1)  # pressed twice: stored once
    b.rate(corrected, "slack:UBOB", -1)
    b.comment(corrected, "slack:UADMIN", "wrong", correction="Yes: 14 days [1].", by_admin=True)
    b.escalate(corrected, "slack:UCAROL")
    assert a.counts() == {"answers": 2, "thumbs_up": 1, "thumbs_down": 1}
    stored = a.get(liked)
    assert (stored.question, stored.answer, stored.voice, stored.abstained) == (
        "How much is Team?", "Team is $8 per user [1].", "crew-v1", False)
    assert stored.user_id == b.stored_user_id("slack:UALICE")  # one hashing key for every replica
    assert stored.user_id.startswith("h:")
    assert [c.source for c in stored.citations] == ["billing/plans.md"]
    assert b.voice_examples() == [
        {"question": "How much is Team?", "answer": "Team is $8 per user [1].", "context": "[1] Plans\nTeam is $8."},
        {"question": "Is there a trial?", "answer": "Yes: 14 days [1].", "context": "[1] Plans\nTeam is $8."}]
    facts = {f.id: f for f in b.answers_between(0, 1e12)}
    assert [(f.thumbs_up, f.thumbs_down, f.escalations, f.answer_ms) for f in (facts[liked], facts[corrected])] == [
        (1, 0, 0, 412.5), (0, 1, 1, 412.5)]
    assert facts[liked].question_key == question_key("how much is  TEAM?")
    assert b.comments_between(0, 1e12) == {corrected: ["wrong"]}
    with pytest.raises(UnknownAnswer):
        b.rate("no-such-answer", "slack:UBOB", +1)


def test_a_delivery_is_first_once_across_replicas_and_threads_are_remembered(replica: Replica) -> None:
    a, b = replica(), replica()
    assert a.first_delivery("slack:Ev1") is True
    assert b.first_delivery("slack:Ev1") is False  # Slack's retry reached the other replica
    assert b.first_delivery("slack:Ev2") is True
    answer_to(a, "How much is Team?", "Team is $8 [1].", conversation="slack:C1:1700000000.1")
    assert b.knows_conversation("slack:C1:1700000000.1") is True
    assert b.knows_conversation("slack:C1:1700000000.2") is False


def test_question_vectors_round_trip_as_bytes(replica: Replica) -> None:
    a, b = replica(retention_days=0), replica(retention_days=0)  # kept without their questions
    vector = bytes(range(256)) * 2
    a.save_vectors({"k1": vector, "k2": b"\x00\x01"}, "model-a")
    a.save_vectors({"k1": b"\xff"}, "model-a")  # replaced
    assert b.vectors(["k1", "k2", "k3"], "model-a") == {"k1": b"\xff", "k2": b"\x00\x01"}
    assert b.vectors(["k1"], "model-b") == {}


def test_retention_forgets_old_questions_with_their_ratings(replica: Replica) -> None:
    now = [1_000_000_000.0]
    store = replica(retention_days=30, clock=lambda: now[0])
    old = answer_to(store, "Old question?", "Old [1].")
    store.rate(old, "slack:U1", -1)
    now[0] += 20 * 86_400
    kept = answer_to(store, "New question?", "New [1].")
    now[0] += 11 * 86_400  # the first question is 31 days old, the second 11
    assert store.forget_expired() == 1
    with pytest.raises(UnknownAnswer):
        store.get(old)
    assert store.get(kept).question == "New question?"
    assert store.counts() == {"answers": 1, "thumbs_up": 0, "thumbs_down": 0}


def test_replicas_starting_at_once_migrate_the_schema_once(replica: Replica) -> None:
    stores = [replica() for _ in range(4)]
    versions: list[int] = []
    errors: list[BaseException] = []

    def start(store: FeedbackStore) -> None:
        try:
            versions.append(store.schema_version())
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=start, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert versions == [LATEST] * 4
    assert all(store.check() is None for store in stores)


def test_postgres_going_away_costs_records_not_answers_and_the_store_reconnects(
    postgres, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.app.pg_state import PostgresStateDatabase

    store = FeedbackStore(PostgresStateDatabase(postgres.fresh_database(), pool_size=2, timeout_s=1,
                                                 retry_away_s=0))  # (tried again at once: no waiting here)
    kept = answer_to(store, "How much is Team?", "Team is $8 [1].")
    postgres.stop()
    try:
        with caplog.at_level(logging.INFO, logger="bot.feedback"):
            lost = answer_to(store, "Is there a trial?", "Yes [1].")  # still returns: the answer goes out
            assert store.first_delivery("slack:Ev9") is True  # answering twice beats not answering
            assert store.knows_conversation("slack:C1:1.0") is False  # unknown: only mentions count
        assert len(lost) == 16
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1  # one line for the outage, not one per event
        assert lines[0].startswith(f"answer {lost} not recorded: the shared state database ")
        assert "check that PostgreSQL is running" in lines[0] and "\n" not in lines[0]
        assert "cannot be used" in store.check()
    finally:
        postgres.start()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bot.feedback"):
        again = answer_to(store, "Is there a trial?", "Yes [1].")  # reconnected by itself
    assert [r.getMessage() for r in caplog.records] == [
        f"the postgresql database {store.database.where} answers again"]
    assert store.get(again).question == "Is there a trial?"
    assert store.get(kept).question == "How much is Team?"  # what was committed is there
    assert store.counts()["answers"] == 2
    assert store.check() is None
    store.close()
