"""The chat flow every platform shares, through its public calls: real feedback store (SQLite),
real command registry and work queue; only retrieval and generation are fakes."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from bot.acl import AccessPolicy
from bot.answering import AnswerService
from bot.chat_flow import CUT_SHORT_TEXT, ERROR_TEXT, RESTARTING_TEXT, THANKS_TEXT, TOO_OLD_TO_POST_TEXT, TOO_OLD_TO_RATE_TEXT, Asker, ChatFlow
from bot.commands import build_registry
from bot.feedback import FEEDBACK_DOWN_TEXT, FeedbackStore
from bot.types import Answer, Citation, Question
from bot.work_queue import BUSY_TEXT, WorkQueue
from tests.fakes import CountingReindexer, EmptyRetriever, MemoryVoices, ScriptedGenerator, StaticStatus


class CitingAnswers(AnswerService):
    """Answers every question with one sentence citing one page; can be held mid-answer."""

    def __init__(self) -> None:
        super().__init__(EmptyRetriever(), ScriptedGenerator())
        self.release = threading.Event()
        self.release.set()

    def answer(self, question: Question, on_token=None) -> Answer:
        self.release.wait(10)
        if question.text == "explode":
            raise RuntimeError("the model file vanished")
        if on_token:
            on_token("Plans start at $8 [1].")
        return Answer(answer="Plans start at $8 [1].", abstained=False,
                      citations=[Citation(n=1, source="billing/plans.md", title="Plans", score=0.9)])


def flow(tmp_path: Path, capacity: int = 8) -> tuple[ChatFlow, CitingAnswers]:
    answers = CitingAnswers()
    registry = build_registry(AccessPolicy(admins=["slack:UADMIN"]), answers, CountingReindexer(), StaticStatus(),
                              voices=MemoryVoices())
    return ChatFlow(registry, FeedbackStore(tmp_path / "feedback.sqlite"), WorkQueue(capacity=capacity)), answers


def question(text: str = "How much is the Team plan?", conversation: str = "slack:C1:1.0") -> Question:
    return Question(text=text, user_id="slack:U1", conversation_id=conversation, channel_id="C1", platform="slack")


def test_an_answer_is_recorded_for_its_buttons_and_its_thread_is_owned_after_a_restart(tmp_path) -> None:
    chat, _ = flow(tmp_path)
    streamed: list[str] = []
    reply = asyncio.run(chat.ask(question(), streamed.append))
    assert reply.text == "Plans start at $8 [1]." and streamed == ["Plans start at $8 [1]."]
    stored = chat.feedback.get(reply.answer_id)
    assert (stored.question, stored.user_id, stored.citations[0].source) == (
        "How much is the Team plan?", chat.feedback.stored_user_id("slack:U1"), "billing/plans.md")
    assert stored.user_id.startswith("h:") and "U1" not in stored.user_id  # hashed unless configured otherwise
    restarted, _ = flow(tmp_path)  # a new process on the same data dir: nothing in memory
    assert restarted.owns_thread("slack:C1:1.0") and not restarted.owns_thread("slack:C1:2.0")


def test_a_question_that_waits_is_told_its_place_then_answered(tmp_path) -> None:
    chat, answers = flow(tmp_path)  # one worker: the second question waits for the first
    told: list[str] = []

    async def tell(text: str) -> None:
        told.append(text)

    async def scenario() -> None:
        answers.release.clear()
        first = asyncio.ensure_future(chat.ask(question("first")))
        await asyncio.sleep(0.2)
        second = asyncio.ensure_future(chat.ask(question("second"), on_place=tell))
        await asyncio.sleep(0.6)
        assert told == ["You're 1st in line, about 5 s. I'll answer here."]
        answers.release.set()
        assert [(await first).text, (await second).text] == ["Plans start at $8 [1]."] * 2
        assert told == ["You're 1st in line, about 5 s. I'll answer here."]  # said once: nothing changed

    asyncio.run(scenario())


def test_a_full_queue_says_busy_and_a_failure_says_so_and_neither_is_recorded(tmp_path) -> None:
    chat, answers = flow(tmp_path, capacity=0)  # one answer running, none may wait

    async def scenario() -> None:
        answers.release.clear()
        first = asyncio.ensure_future(chat.ask(question("first")))
        await asyncio.sleep(0.2)
        busy = await chat.ask(question("second"))
        assert (busy.text, busy.answer, busy.answer_id) == (BUSY_TEXT, None, None)
        answers.release.set()
        assert (await first).answer_id is not None
        failed = await chat.ask(question("explode"))
        assert (failed.text, failed.answer_id) == ("Something went wrong running /ask; the error was logged.", None)

    asyncio.run(scenario())
    assert chat.feedback.counts()["answers"] == 1
    assert ERROR_TEXT.startswith("Sorry, something went wrong")  # what a failure outside the registry shows


def test_ratings_say_what_happened(tmp_path) -> None:
    chat, _ = flow(tmp_path)
    answer_id = asyncio.run(chat.ask(question())).answer_id
    up = chat.rate(answer_id, "slack:U2", +1)
    assert (up.recorded, up.message) == (True, THANKS_TEXT)
    down = chat.rate(answer_id, "slack:U3", -1)
    assert (down.recorded, down.message) == (True, None)  # the platform opens the "what was wrong" form
    old = chat.rate("0123456789abcdef", "slack:U2", +1)
    assert (old.recorded, old.message) == (False, TOO_OLD_TO_RATE_TEXT)
    assert chat.feedback.counts() == {"answers": 1, "thumbs_up": 1, "thumbs_down": 1}


def test_a_correction_counts_only_from_an_admin_and_an_empty_form_is_nothing(tmp_path) -> None:
    chat, _ = flow(tmp_path)
    answer_id = asyncio.run(chat.ask(question())).answer_id
    assert chat.comment(answer_id, "slack:U2", "", "", by_admin=False) is None
    assert chat.comment(answer_id, "slack:U2", "outdated", "It is $10.", by_admin=False) is None
    assert chat.comment(answer_id, "slack:UADMIN", "", "It is $9.", by_admin=True) is None
    rows = chat.feedback._db.execute("SELECT user_id, comment, correction FROM feedback WHERE answer_id = ? "
                                     "ORDER BY rowid", (answer_id,)).fetchall()
    hashed = chat.feedback.stored_user_id
    assert rows == [(hashed("slack:U2"), "outdated", None), (hashed("slack:UADMIN"), None, "It is $9.")]
    assert chat.comment("0123456789abcdef", "slack:U2", "wrong", "", by_admin=False) == FEEDBACK_DOWN_TEXT


def test_posting_an_answer_needs_it_recorded(tmp_path) -> None:
    chat, _ = flow(tmp_path)
    answer_id = asyncio.run(chat.ask(question())).answer_id
    assert chat.stored_answer(answer_id).answer == "Plans start at $8 [1]."
    assert chat.stored_answer("0123456789abcdef") == TOO_OLD_TO_POST_TEXT


def test_admin_commands_check_the_asker_and_show_listings_in_monospace(tmp_path) -> None:
    chat, _ = flow(tmp_path)
    guest, admin = Asker("slack:UGUEST", "slack"), Asker("slack:UADMIN", "slack")
    vouched = Asker("slack:UMOD", "slack", platform_admin=True)  # in the platform's admin group
    assert [chat.is_admin(a) for a in (guest, admin, vouched)] == [False, True, True]
    refused = asyncio.run(chat.command("reindex", "", guest))
    assert (refused.ok, refused.text) == (False, "Sorry, /reindex is for admins only.")
    progress: list[str] = []
    reindexed = asyncio.run(chat.command("reindex", "", vouched, on_progress=progress.append))
    assert (reindexed.text, reindexed.monospace, progress) == ("Index v2: 3 documents.", False, ["scanned 1/1"])
    status = asyncio.run(chat.command("status", "", admin))
    assert (status.text, status.monospace) == ("index version: 2\ndocuments: 3", True)
    unknown_voice = asyncio.run(chat.command("voice", "activate nope", admin))
    assert (unknown_voice.ok, unknown_voice.text, unknown_voice.monospace) == (False, "no voice named 'nope'", False)


def test_a_bug_in_a_command_is_logged_not_shown_as_a_refusal(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    class BrokenVoices(MemoryVoices):
        def activate_voice(self, name: str):
            raise ValueError("list index out of range")  # a bug, not a reason the admin can act on

    registry = build_registry(AccessPolicy(admins=["slack:UADMIN"]), CitingAnswers(), CountingReindexer(),
                              StaticStatus(), voices=BrokenVoices())
    chat = ChatFlow(registry, FeedbackStore(tmp_path / "feedback.sqlite"), WorkQueue())
    reply = asyncio.run(chat.command("voice", "activate crew-v1", Asker("slack:UADMIN", "slack")))
    assert (reply.ok, reply.text) == (False, "Something went wrong running /voice; the error was logged.")
    assert "list index out of range" in caplog.text


def test_each_delivery_is_handled_once_also_across_replicas_sharing_the_database(tmp_path) -> None:
    chat, _ = flow(tmp_path)
    replica, _ = flow(tmp_path)  # another process on the same feedback database
    assert chat.first_delivery("slack:Ev1") and not chat.first_delivery("slack:Ev1")
    assert not replica.first_delivery("slack:Ev1")  # Slack's retry reached the other replica
    assert replica.first_delivery("slack:Ev2") and not chat.first_delivery("slack:Ev2")
    for n in range(10_001):
        chat.first_delivery(f"slack:Ev{n + 3}")
    assert len(chat._deliveries) == 10_000  # memory stays bounded; the database keeps a day
    assert not chat.first_delivery("slack:Ev1")


def test_a_delivery_counts_as_first_when_the_database_is_down(tmp_path) -> None:
    (tmp_path / "feedback.sqlite").mkdir()  # not a database file: every query fails
    chat, _ = flow(tmp_path)
    assert chat.first_delivery("slack:Ev1")  # answering twice beats not answering
    assert not chat.first_delivery("slack:Ev1")  # this process still remembers it


def test_asking_for_a_person_names_the_configured_group_or_the_team() -> None:
    assert ChatFlow.human_request("<!subteam^S1>", "<@U1>") == (
        "<!subteam^S1>, <@U1> would like a person to help with this question.")
    assert ChatFlow.human_request(None, "<@U1>") == "Someone from the team, <@U1> would like a person to help with " \
                                                    "this question."


def test_on_shutdown_new_questions_are_told_to_ask_again_and_those_in_flight_finish(tmp_path) -> None:
    chat, answers = flow(tmp_path)

    async def scenario() -> None:
        answers.release.clear()
        in_flight = asyncio.ensure_future(chat.ask(question("first")))
        await asyncio.sleep(0.2)
        chat.stop_taking_questions()
        late = await chat.ask(question("second"))
        assert (late.text, late.answer_id) == (RESTARTING_TEXT, None)
        assert chat.in_flight == 1 and not await chat.drained(0.2)  # still answering: not drained yet
        answers.release.set()
        assert await chat.drained(5) and (await in_flight).text == "Plans start at $8 [1]."

    asyncio.run(scenario())
    assert chat.feedback.counts()["answers"] == 1


def test_the_drain_waits_for_an_answer_written_but_not_yet_posted(tmp_path) -> None:
    chat, _ = flow(tmp_path)
    posted: list[str] = []

    async def adapter(slack_is_slow: asyncio.Event) -> None:
        async with chat.handling():
            reply = await chat.ask(question("first"))
            await slack_is_slow.wait()  # the platform has not confirmed the post yet
            posted.append(reply.text)

    async def scenario() -> None:
        slack_is_slow = asyncio.Event()
        delivering = asyncio.ensure_future(adapter(slack_is_slow))
        while chat.feedback.counts()["answers"] == 0:  # written and recorded
            await asyncio.sleep(0.05)
        chat.stop_taking_questions()
        assert chat.in_flight == 1 and not await chat.drained(0.3)
        slack_is_slow.set()
        assert await chat.drained(5) and posted == ["Plans start at $8 [1]."]
        await delivering

    asyncio.run(scenario())


def test_a_question_taken_just_before_the_stop_is_answered_and_one_after_it_is_not(tmp_path) -> None:
    chat, _ = flow(tmp_path)

    async def adapter(stop_now: bool) -> str:
        async with chat.handling():  # the adapter took the question (its placeholder is posted)
            if stop_now:
                chat.stop_taking_questions()  # SIGTERM lands between the placeholder and the answer
            return (await chat.ask(question("first"))).text

    assert asyncio.run(adapter(stop_now=True)) == "Plans start at $8 [1]."
    assert asyncio.run(adapter(stop_now=False)) == RESTARTING_TEXT  # taken after the stop

    fresh, _ = flow(tmp_path)

    async def nested() -> str:
        async with fresh.handling():  # Discord's thread path takes the question ...
            fresh.stop_taking_questions()
            async with fresh.handling():  # ... and the answer path it shares with /ask opens its own scope
                return (await fresh.ask(question("first"))).text

    assert asyncio.run(nested()) == "Plans start at $8 [1]."


def test_an_answer_past_the_grace_period_is_cut_short_and_its_asker_told_to_ask_again(tmp_path) -> None:
    chat, answers = flow(tmp_path)

    async def scenario() -> None:
        answers.release.clear()
        in_flight = asyncio.ensure_future(chat.ask(question("first")))
        waiting = asyncio.ensure_future(chat.ask(question("second")))  # queued behind it
        await asyncio.sleep(0.2)
        chat.stop_taking_questions()
        assert not await chat.drained(0.3)
        chat.abandon()
        assert [(await in_flight).text, (await waiting).text] == [CUT_SHORT_TEXT, CUT_SHORT_TEXT]
        assert await chat.drained(1)
        answers.release.set()  # the answer being written stops at its next token

    asyncio.run(scenario())
    time.sleep(0.5)
    assert chat.feedback.counts()["answers"] == 0
