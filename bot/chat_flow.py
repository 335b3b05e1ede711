"""The chat flow every platform shares: what happens between "someone asked in chat" and
"this is what to show them", written once.

A platform adapter (Slack, Discord) only translates: it turns an event into a `Question` or
a command call with an `Asker`, hands it here, and renders what comes back. Here live the
queue (and its busy text), the error text, recording answers so their buttons can be rated,
ratings and corrections, the admin check, which threads the bot answers in without a
mention, the user-facing texts, the dedupe of events a platform delivers twice, and the
drain on shutdown (stop taking questions, let those in flight finish).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot.commands import ASK_USAGE, CommandContext, CommandRegistry, Reply
from bot.feedback import FEEDBACK_DOWN_TEXT, FeedbackStore, FeedbackUnavailable, StoredAnswer, UnknownAnswer
from bot.protocols import Refused
from bot.streaming import LiveMessage
from bot.types import Answer, Question
from bot.work_queue import QueueFull, WorkQueue

log = logging.getLogger(__name__)

LOOKING_UP_TEXT = "Looking that up in the docs…"
ERROR_TEXT = "Sorry, something went wrong while answering. The error was logged; please try again."
EMPTY_QUESTION_TEXT = "Ask me a question about the docs, e.g. “how do I reset my password?”"
ASK_USAGE_TEXT = ASK_USAGE
THANKS_TEXT = "Thanks! Glad it helped."
TOO_OLD_TO_RATE_TEXT = "That answer is too old to rate."
TOO_OLD_TO_POST_TEXT = "That answer is too old to post."
WORKING_TEXT = "Working on it…"
RESTARTING_TEXT = "I'm restarting for an update; please ask again in a minute."
PLACE_END = "I'll answer here."  # ends a place-in-line message
CUT_SHORT_TEXT = "Sorry, I had to stop before finishing this answer (the bot is restarting). Please ask again in a minute."
Edit = Callable[[str], Awaitable[Any]]  # replaces the text of one message the platform shows
_THREADS_KEPT = 5000  # threads remembered in memory (the feedback store remembers all of them)
_EVENTS_KEPT = 10_000  # delivery ids remembered for dedupe


def place_text(place: int, wait_s: float) -> str:
    """ "You're 3rd in line, about 20 s." (rounded up to 5 s; minutes past two minutes)."""
    suffix = "th" if 10 <= place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place % 10, "th")
    if wait_s >= 120:
        about = f"about {math.ceil(wait_s / 60)} min"
    else:
        about = f"about {max(5, math.ceil(wait_s / 5) * 5)} s"
    return f"You're {place}{suffix} in line, {about}. {PLACE_END}"


# Inside an adapter's answer path (`handling`): whether it began while questions were taken.
_taken_before_stop: contextvars.ContextVar[bool] = contextvars.ContextVar("taken_before_stop", default=False)


class Restarting(Refused):
    """Raised into an answer still being written when the bot stops waiting for it."""


@dataclass(frozen=True)
class Asker:
    """Who asked, where: ids qualified by platform ("slack:U123")."""

    user_id: str
    platform: str
    channel_id: str | None = None
    platform_admin: bool = False  # the platform vouches for it (Slack admin group, Discord role)


@dataclass(frozen=True)
class ChatReply:
    """What to show for a question: `answer` and `answer_id` (for the rating buttons) when one
    was written, else only `text` (busy, an error)."""

    text: str
    answer: Answer | None = None
    answer_id: str | None = None


@dataclass(frozen=True)
class Rated:
    """The outcome of a 👍/👎: `recorded`, and what to tell the rater (None: nothing to say)."""

    recorded: bool
    message: str | None


class ChatFlow:
    """`on_answered(question, answer)`: called on the worker thread for every answer the
    flow records, after it is written (e.g. to keep the question's vector for insights)."""

    def __init__(self, commands: CommandRegistry, feedback: FeedbackStore, queue: WorkQueue,
                 on_answered: Callable[[Question, Answer], None] | None = None) -> None:
        self.commands = commands
        self.feedback = feedback
        self.queue = queue
        self.on_answered = on_answered
        self._threads: OrderedDict[str, float] = OrderedDict()
        self._deliveries: OrderedDict[str, None] = OrderedDict()
        self._accepting = True
        self._abandoned = False
        self._in_flight = 0  # questions being answered
        self._delivering = 0  # adapters' answer paths open (placeholder to final post)

    # ----- questions --------------------------------------------------------------------
    async def ask(self, question: Question, on_token: Callable[[str], None] | None = None,
                  on_place: Edit | None = None, place_interval_s: float = 2.0) -> ChatReply:
        """Answer on the shared work queue; always comes back with something to show. While
        the question waits its turn, `on_place` is told its place and about how long
        ("You're 3rd in line, about 20 s"), again when that changes (at most every
        `place_interval_s`)."""
        if not (self._accepting or _taken_before_stop.get()):
            return ChatReply(RESTARTING_TEXT)
        self._in_flight += 1
        asked_at = time.monotonic()
        try:
            ticket = self.queue.submit(lambda: self._answer(question, on_token))
            work = asyncio.wrap_future(ticket.future)
            said, said_at = "", 0.0
            while not (await asyncio.wait({work}, timeout=0.2))[0]:
                if self._abandoned:  # shutting down and out of patience: tell the asker now
                    work.cancel()  # a question still waiting in the queue is never started
                    return ChatReply(CUT_SHORT_TEXT)
                place = ticket.place()
                if on_place is None or not place or time.monotonic() - said_at < place_interval_s:
                    continue
                text = place_text(place, ticket.wait_s())
                if text != said:
                    said, said_at = text, time.monotonic()
                    try:
                        await on_place(text)
                    except Exception as err:  # best effort: the answer still comes
                        log.warning("could not show the place in line: %s", err)
            reply = work.result()
        except QueueFull as busy:
            return ChatReply(str(busy))
        except Exception:
            log.exception("answering on %s failed", question.platform)
            return ChatReply(ERROR_TEXT)
        finally:
            self._in_flight -= 1
        if reply.answer is None:
            return ChatReply(reply.text)
        waited_ms = round((time.monotonic() - asked_at) * 1000, 1)  # what the asker waited, queue included
        return ChatReply(reply.answer.answer, reply.answer,
                         self.feedback.record_answer(question, reply.answer, answer_ms=waited_ms))

    def _answer(self, question: Question, on_token: Callable[[str], None] | None) -> Reply:
        """On a worker: the answer, then `on_answered` (its failure never costs the answer)."""
        reply = self.commands.ask(question, self._until_abandoned(on_token))
        if reply.answer is not None and self.on_answered is not None:
            try:
                self.on_answered(question, reply.answer)
            except Exception:
                log.exception("after answering on %s", question.platform)
        return reply

    async def ask_live(self, question: Question, edit: Edit, interval_s: float,
                       fit: Callable[[str], str] = lambda text: text, unfinished: str = " …",
                       show_place: bool = True) -> ChatReply:
        """`ask`, with the answer streamed into a message through `edit` at most once per
        `interval_s` (`unfinished` marks it as still being written; `fit` keeps it inside the
        platform's limit), and, while it waits its turn, its place in line (`show_place`).
        Settled before returning: a late partial edit never overwrites the final text."""
        live = LiveMessage(edit, interval_s, render=lambda so_far, _: fit(so_far + unfinished))
        reply = await self.ask(question, live.add, on_place=edit if show_place else None,
                               place_interval_s=max(interval_s, 2.0))
        await live.settle()
        return reply

    # ----- admin commands ---------------------------------------------------------------
    async def command_live(self, name: str, args: str, asker: Asker, edit: Edit, interval_s: float,
                           spelling: str = "/{name}") -> Reply:
        """`command`, showing a re-index's progress through `edit` while it runs."""
        progress = LiveMessage(edit, interval_s, render=lambda _, line: f"Re-indexing… {line}")
        reply = await self.command(name, args, asker, on_progress=progress.add, spelling=spelling)
        await progress.settle()
        return reply

    async def command(self, name: str, args: str, asker: Asker, on_progress: Callable[[str], None] | None = None,
                      spelling: str = "/{name}") -> Reply:
        """A command by its core name ("reindex", "status", "voice", "help"); `spelling` is how
        the platform writes it ("/supportbot {name}"). Admin commands are slow (re-index) but
        rare, so they run beside the answer queue, not on it."""
        ctx = CommandContext(user_id=asker.user_id, conversation_id="", platform=asker.platform,
                             channel_id=asker.channel_id, on_progress=on_progress,
                             platform_admin=asker.platform_admin, spelling=spelling)
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.commands.run, name, args, ctx)
        except Exception:
            log.exception("/%s %s failed", name, args)
            return Reply(ERROR_TEXT, ok=False)

    def is_admin(self, asker: Asker) -> bool:
        return self.commands.is_admin(asker.user_id, asker.platform, asker.platform_admin)

    # ----- feedback ---------------------------------------------------------------------
    def rate(self, answer_id: str, user_id: str, rating: int) -> Rated:
        try:
            self.feedback.rate(answer_id, user_id, rating)
        except UnknownAnswer:
            return Rated(False, TOO_OLD_TO_RATE_TEXT)
        except FeedbackUnavailable as err:
            log.error("rating not recorded: %s", err)
            return Rated(False, FEEDBACK_DOWN_TEXT)
        return Rated(True, THANKS_TEXT if rating > 0 else None)

    def comment(self, answer_id: str, user_id: str, wrong: str, fix: str, by_admin: bool) -> str | None:
        """What was wrong, and (from an admin) the corrected answer; an empty form is nothing.
        Returns what to tell the user when it could not be recorded."""
        if not (wrong or fix):
            return None
        try:
            self.feedback.comment(answer_id, user_id, wrong, (fix or None) if by_admin else None, by_admin=by_admin)
        except UnknownAnswer:
            log.warning("feedback for unknown answer %s", answer_id)
            return FEEDBACK_DOWN_TEXT
        except FeedbackUnavailable as err:
            log.error("comment not recorded: %s", err)
            return FEEDBACK_DOWN_TEXT
        return None

    def stored_answer(self, answer_id: str) -> StoredAnswer | str:
        """A recorded answer (to post it to the channel), or the text to show instead."""
        try:
            return self.feedback.get(answer_id)
        except UnknownAnswer:
            return TOO_OLD_TO_POST_TEXT
        except FeedbackUnavailable as err:
            log.error("answer not found for posting: %s", err)
            return FEEDBACK_DOWN_TEXT

    def escalate(self, answer_id: str, user_id: str) -> None:
        """A "talk to a human" press: counted for insights (the docs did not settle it). The
        request for a person goes out whether or not it could be recorded."""
        try:
            self.feedback.escalate(answer_id, user_id)
        except UnknownAnswer:
            log.info("talk to a human on an answer no longer stored: %s", answer_id)
        except FeedbackUnavailable as err:
            log.error("escalation not recorded: %s", err)

    @staticmethod
    def human_request(group: str | None, user: str) -> str:
        """`group`: the platform's mention of the configured helpers (None: nobody configured)."""
        return f"{group or 'Someone from the team'}, {user} would like a person to help with this question."

    # ----- threads and deliveries -------------------------------------------------------
    def owns_thread(self, conversation_id: str) -> bool:
        """Threads answered by this process, or by any before it (recorded with the answers):
        follow-ups there need no mention."""
        if conversation_id in self._threads:
            return True
        if self.feedback.knows_conversation(conversation_id):
            self.remember_thread(conversation_id)
            return True
        return False

    def remember_thread(self, conversation_id: str) -> None:
        self._threads[conversation_id] = time.time()
        self._threads.move_to_end(conversation_id)
        while len(self._threads) > _THREADS_KEPT:
            self._threads.popitem(last=False)

    def first_delivery(self, delivery_id: str) -> bool:
        """False for an event id seen before, by this process or any replica sharing the
        feedback database: platforms re-deliver what they think was not acknowledged (Slack
        retries up to 3 times, possibly to another replica), and each event is answered once."""
        if delivery_id in self._deliveries:
            return False
        self._deliveries[delivery_id] = None
        while len(self._deliveries) > _EVENTS_KEPT:
            self._deliveries.popitem(last=False)
        return self.feedback.first_delivery(delivery_id)

    # ----- shutdown ---------------------------------------------------------------------
    def stop_taking_questions(self) -> None:
        """From now on a question is told the bot is restarting instead of being queued."""
        self._accepting = False

    @asynccontextmanager
    async def handling(self) -> AsyncIterator[None]:
        """Around an adapter's whole answer path, from the placeholder to the final post: the
        drain waits for it, so an answer that was written is also delivered before the bot
        stops (not only computed)."""
        self._delivering += 1
        # a question taken before the stop is answered; a nested scope keeps what the outer one saw
        taken = _taken_before_stop.set(_taken_before_stop.get() or self._accepting)
        try:
            yield
        finally:
            _taken_before_stop.reset(taken)
            self._delivering -= 1

    @property
    def in_flight(self) -> int:
        """Answers not yet delivered."""
        return max(self._in_flight, self._delivering)

    async def drained(self, grace_s: float) -> bool:
        """Wait up to `grace_s` for the answers in flight to be written and delivered; False
        if some were not."""
        deadline = time.monotonic() + grace_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.in_flight == 0

    def abandon(self) -> None:
        """Stop waiting for the answers still in flight: each asker is told to ask again, and
        the generator is stopped at its next token."""
        self._accepting = False
        self._abandoned = True

    def _until_abandoned(self, on_token: Callable[[str], None] | None) -> Callable[[str], None]:
        def streamed(piece: str) -> None:
            if self._abandoned:
                raise Restarting("the bot is restarting")
            if on_token is not None:
                on_token(piece)

        return streamed
