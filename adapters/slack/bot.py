"""Slack: mentions, thread follow-ups, DMs, /ask, /supportbot admin commands, feedback.

The bolt adapter rule: each listener translates a Slack payload into a core call (the command
registry) and the Reply back into Slack messages; no answering logic lives here. Bolt acks
every request at once; the answer is produced on the shared bounded work queue, streamed into
a placeholder message by edits at most once a second, and always ends in a visible reply:
the answer, "nothing relevant", an error, or "busy".
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as kit
from bot.commands import CommandContext, CommandRegistry, Reply
from bot.feedback import FEEDBACK_DOWN_TEXT, FeedbackStore, FeedbackUnavailable, UnknownAnswer
from bot.rendering import freshness_line
from bot.streaming import LiveMessage
from bot.types import Question
from bot.work_queue import QueueFull, WorkQueue

log = logging.getLogger(__name__)

PLACEHOLDER = "_Looking that up in the docs…_"
ERROR_TEXT = "Sorry, something went wrong while answering. The error was logged; please try again."
_MENTION = re.compile(r"<@[A-Z0-9]+>\s*")
_ADMIN_COMMANDS = {"reindex": "/reindex", "status": "/status", "voice": "/voice", "help": "/help"}
COMMANDS = ("/ask", "/supportbot")
EVENTS = ("app_mention", "message")
# What the listeners need (deploy/slack-manifest.yaml asks for exactly these).
SCOPES = frozenset({"app_mentions:read", "channels:history", "groups:history", "im:history", "chat:write",
                    "commands", "usergroups:read"})
_THREADS_KEPT = 5000  # threads the bot answered in, remembered for follow-ups without a mention
_GROUP_TTL_S = 300


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str
    signing_secret: str | None = None  # HTTP mode
    api_base_url: str = "https://slack.com/api/"
    admin_group: str | None = None
    human_group: str | None = None
    edit_interval_s: float = 1.0


class SlackBot:
    def __init__(self, commands: CommandRegistry, feedback: FeedbackStore, queue: WorkQueue,
                 settings: SlackSettings) -> None:
        self.commands = commands
        self.feedback = feedback
        self.queue = queue
        self.settings = settings
        self.client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_base_url, retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),  # honours Retry-After
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ])
        self.app = AsyncApp(client=self.client, signing_secret=settings.signing_secret or "socket-mode",
                            request_verification_enabled=settings.signing_secret is not None,
                            process_before_response=False, raise_error_for_unhandled_request=False)
        self._threads: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._admin_group: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._register()

    # ----- listeners ------------------------------------------------------------------
    def _register(self) -> None:
        app = self.app
        app.event(EVENTS[0])(self._on_mention)
        app.event(EVENTS[1])(self._on_message)
        app.command(COMMANDS[0])(self._on_ask)
        app.command(COMMANDS[1])(self._on_admin)
        app.action(kit.UP)(self._on_thumbs_up)
        app.action(kit.DOWN)(self._on_thumbs_down)
        app.action(kit.HUMAN)(self._on_human)
        app.action(kit.POST)(self._on_post)
        app.view(kit.FEEDBACK_MODAL)(self._on_feedback_modal)
        app.error(self._on_error)

    async def _on_error(self, error: Exception, body: dict) -> None:
        log.error("Slack listener failed on a %s request: %s", body.get("type", "?"), error, exc_info=error)

    async def _on_mention(self, event: dict) -> None:
        channel, thread_ts = event["channel"], event.get("thread_ts") or event["ts"]
        await self._answer_in_thread(event["user"], _MENTION.sub("", event.get("text", "")).strip(), channel, thread_ts)

    async def _on_message(self, event: dict, context: Any) -> None:
        if event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return  # edits, joins, other bots, our own messages
        text = event.get("text", "")
        if context.bot_user_id and f"<@{context.bot_user_id}>" in text:
            return  # the app_mention listener answers it
        channel = event["channel"]
        if event.get("channel_type") == "im":
            await self._answer_in_thread(event["user"], text.strip(), channel, event.get("thread_ts"))
        elif event.get("thread_ts") and self._answered_in(channel, event["thread_ts"]):
            await self._answer_in_thread(event["user"], text.strip(), channel, event["thread_ts"])

    async def _on_ask(self, ack: Callable[..., Awaitable], command: dict, respond: Callable[..., Awaitable]) -> None:
        text = command.get("text", "").strip()
        if not text:
            await ack(response_type="ephemeral", text="Usage: /ask <your question>")
            return
        await ack(response_type="ephemeral", text=PLACEHOLDER)
        user, channel = command["user_id"], command.get("channel_id")
        question = Question(text=text, user_id=f"slack:{user}", conversation_id="", channel_id=channel,
                            platform="slack")
        try:
            reply = await self._run_answer(question, on_token=None)
        except QueueFull as busy:
            await respond(response_type="ephemeral", replace_original=True, text=str(busy))
            return
        except Exception:
            log.exception("/ask failed")
            await respond(response_type="ephemeral", replace_original=True, text=ERROR_TEXT)
            return
        text_out, blocks = self._reply_blocks(question, reply, can_post=True)
        await respond(response_type="ephemeral", replace_original=True, text=text_out, blocks=blocks)

    async def _on_admin(self, ack: Callable[..., Awaitable], command: dict, respond: Callable[..., Awaitable]) -> None:
        words = command.get("text", "").split()
        name = _ADMIN_COMMANDS.get(words[0].lower() if words else "help")
        if name is None:
            await ack(response_type="ephemeral",
                      text=f"Unknown command `{words[0]}`. Try `/supportbot help` (reindex, status, voice, help).")
            return
        await ack(response_type="ephemeral", text="Working on it…")
        user = command["user_id"]
        progress = LiveMessage(lambda line: respond(response_type="ephemeral", replace_original=True, text=line),
                               self.settings.edit_interval_s, render=lambda _, line: f"Re-indexing… {line}")
        ctx = CommandContext(user_id=f"slack:{user}", conversation_id="", platform="slack",
                             channel_id=command.get("channel_id"), on_progress=progress.add,
                             platform_admin=await self._in_admin_group(user))
        text = " ".join([name, *words[1:]])
        try:  # admin commands are slow (re-index) but rare: not on the answer queue
            reply = await asyncio.get_running_loop().run_in_executor(None, self.commands.handle, text, ctx)
        except Exception:
            log.exception("/supportbot %s failed", text)
            reply = Reply(ERROR_TEXT, ok=False)
        await progress.settle()
        if name == "/help":  # the registry's names are the console's; say how Slack spells them
            body = ("Mention me or DM me a question, or use `/ask <question>` (only you see the answer). "
                    "Admins: `/supportbot reindex`, `/supportbot status`, "
                    "`/supportbot voice [list | activate NAME | rollback]`.")
        else:
            body = reply.text if name == "/reindex" or not reply.ok else f"```{reply.text}```"
        await respond(response_type="ephemeral", replace_original=True, text=body)

    # ----- answering ------------------------------------------------------------------
    async def _answer_in_thread(self, user: str, text: str, channel: str, thread_ts: str | None) -> None:
        """Placeholder, streamed edits, then the answer with sources and buttons; never silence."""
        conversation = _conversation(channel, thread_ts)
        question = Question(text=text, user_id=f"slack:{user}", conversation_id=conversation, channel_id=channel,
                            platform="slack")
        if not text:
            await self._post(channel, thread_ts, "Ask me a question about the docs, e.g. “how do I reset my password?”")
            return
        ts = await self._post(channel, thread_ts, PLACEHOLDER)
        if thread_ts:
            self._remember_thread(channel, thread_ts)
        if ts is None:
            return  # could not even post: logged by _post
        live = LiveMessage(lambda text: self.client.chat_update(channel=channel, ts=ts, text=text),
                           self.settings.edit_interval_s, render=lambda so_far, _: so_far + " …")
        try:
            reply = await self._run_answer(question, live.add)
        except QueueFull as busy:
            await self._update(channel, ts, str(busy))
            return
        except Exception:
            log.exception("answering in %s failed", channel)
            await self._update(channel, ts, ERROR_TEXT)
            return
        await live.settle()  # the final text must not be overwritten by a late partial edit
        fallback, blocks = self._reply_blocks(question, reply)
        await self._update(channel, ts, fallback, blocks)

    async def _run_answer(self, question: Question, on_token: Callable[[str], None] | None) -> Reply:
        ctx = CommandContext(user_id=question.user_id, conversation_id=question.conversation_id, platform="slack",
                             channel_id=question.channel_id, on_token=on_token)
        future = self.queue.submit(lambda: self.commands.handle("/ask " + question.text, ctx))
        return await asyncio.wrap_future(future)

    def _reply_blocks(self, question: Question, reply: Reply, can_post: bool = False) -> tuple[str, list | None]:
        answer = reply.answer
        if answer is None:
            return reply.text, None
        answer_id = self.feedback.record_answer(question, answer)
        citations = [c.model_dump(mode="json") for c in answer.citations]
        footer = freshness_line(answer)
        return answer.answer, kit.answer_blocks(answer.answer, citations, answer_id, answer.abstained,
                                                can_post=can_post, footer=footer)

    # ----- buttons and the feedback modal ---------------------------------------------
    async def _on_thumbs_up(self, ack: Callable[..., Awaitable], body: dict, action: dict,
                            respond: Callable[..., Awaitable]) -> None:
        await ack()
        user = body["user"]["id"]
        if not await self._rate(action["value"], user, +1, respond):
            return
        await respond(response_type="ephemeral", replace_original=False, text="Thanks! Glad it helped.")

    async def _on_thumbs_down(self, ack: Callable[..., Awaitable], body: dict, action: dict,
                              respond: Callable[..., Awaitable]) -> None:
        await ack()
        user = body["user"]["id"]
        if not await self._rate(action["value"], user, -1, respond):
            return
        channel, thread_ts = _where(body)
        admin = await self._is_admin(user)
        try:
            await self.client.views_open(trigger_id=body["trigger_id"],
                                         view=kit.feedback_modal(action["value"], channel, thread_ts, admin))
        except SlackApiError as err:  # the 👎 itself is stored; the optional comment form is a bonus
            log.warning("could not open the feedback form: %s", err.response.get("error"))

    async def _rate(self, answer_id: str, user: str, rating: int, respond: Callable[..., Awaitable]) -> bool:
        try:
            self.feedback.rate(answer_id, f"slack:{user}", rating)
        except UnknownAnswer:
            await respond(response_type="ephemeral", replace_original=False, text="That answer is too old to rate.")
            return False
        except FeedbackUnavailable as err:
            log.error("rating not recorded: %s", err)
            await respond(response_type="ephemeral", replace_original=False, text=FEEDBACK_DOWN_TEXT)
            return False
        return True

    async def _on_feedback_modal(self, ack: Callable[..., Awaitable], body: dict, view: dict) -> None:
        await ack()
        user = body["user"]["id"]
        answer_id = view.get("private_metadata", "").split("|", 1)[0]
        values = view.get("state", {}).get("values", {})
        wrong = (values.get(kit.WRONG_BLOCK, {}).get(kit.WRONG_INPUT, {}).get("value") or "").strip()
        fix = (values.get(kit.FIX_BLOCK, {}).get(kit.FIX_INPUT, {}).get("value") or "").strip()
        admin = await self._is_admin(user)
        if not (wrong or fix):
            return
        try:
            self.feedback.comment(answer_id, f"slack:{user}", wrong, fix if admin else None, by_admin=admin)
        except UnknownAnswer:
            log.warning("feedback for unknown answer %s", answer_id)
        except FeedbackUnavailable as err:
            log.error("comment not recorded: %s", err)

    async def _on_human(self, ack: Callable[..., Awaitable], body: dict, action: dict) -> None:
        await ack()
        user = body["user"]["id"]
        channel, thread_ts = _where(body)
        group = f"<!subteam^{self.settings.human_group}>" if self.settings.human_group else "Someone from the team"
        text = f"{group}, <@{user}> would like a person to help with this question."
        if channel:
            await self._post(channel, thread_ts, text)

    async def _on_post(self, ack: Callable[..., Awaitable], body: dict, action: dict,
                       respond: Callable[..., Awaitable]) -> None:
        await ack()
        user = body["user"]["id"]
        channel, _ = _where(body)
        try:
            stored = self.feedback.get(action["value"])
        except UnknownAnswer:
            await respond(response_type="ephemeral", replace_original=False, text="That answer is too old to post.")
            return
        except FeedbackUnavailable as err:
            log.error("answer not found for posting: %s", err)
            await respond(response_type="ephemeral", replace_original=False, text=FEEDBACK_DOWN_TEXT)
            return
        heading = f"<@{user}> asked: {kit.escape(stored.question)}\n\n"
        posted = await self._post(channel, None, stored.answer, kit.answer_blocks(
            stored.answer, stored.sources, stored.id, stored.abstained, heading=heading))
        if posted:
            await respond(delete_original=True)

    # ----- Web API helpers: failures are logged, never raised into Bolt ------------------
    async def _post(self, channel: str | None, thread_ts: str | None, text: str,
                    blocks: list | None = None) -> str | None:
        try:
            response = await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text[:3900],
                                                           blocks=blocks, unfurl_links=False)
            return response.get("ts")
        except SlackApiError as err:
            log.error("chat.postMessage to %s failed: %s", channel, err.response.get("error"))
            return None

    async def _update(self, channel: str, ts: str, text: str, blocks: list | None = None) -> None:
        try:
            await self.client.chat_update(channel=channel, ts=ts, text=text[:3900], blocks=blocks or [])
        except SlackApiError as err:
            log.error("chat.update in %s failed: %s", channel, err.response.get("error"))

    async def post_notice(self, channel: str, text: str) -> None:
        """For the admins' channel (re-index summaries)."""
        await self._post(channel, None, text)

    def _answered_in(self, channel: str, thread_ts: str) -> bool:
        """Threads answered by this process, or by any before it (recorded with the answers)."""
        if (channel, thread_ts) in self._threads:
            return True
        if self.feedback.knows_conversation(_conversation(channel, thread_ts)):
            self._remember_thread(channel, thread_ts)
            return True
        return False

    def _remember_thread(self, channel: str, thread_ts: str) -> None:
        self._threads[(channel, thread_ts)] = time.time()
        self._threads.move_to_end((channel, thread_ts))
        while len(self._threads) > _THREADS_KEPT:
            self._threads.popitem(last=False)

    async def _is_admin(self, user: str) -> bool:
        return self.commands.is_admin(CommandContext(user_id=f"slack:{user}", conversation_id="", platform="slack",
                                                     platform_admin=await self._in_admin_group(user)))

    async def _in_admin_group(self, user: str) -> bool:
        group = self.settings.admin_group
        if not group:
            return False
        fetched_at, members = self._admin_group
        if time.monotonic() - fetched_at > _GROUP_TTL_S:
            try:
                response = await self.client.usergroups_users_list(usergroup=group)
                members = frozenset(response.get("users", []))
                self._admin_group = (time.monotonic(), members)
            except SlackApiError as err:
                log.warning("could not read admin group %s: %s", group, err.response.get("error"))
        return user in members


def _conversation(channel: str, thread_ts: str | None) -> str:
    return f"slack:{channel}:{thread_ts or 'dm'}"


def _where(body: dict) -> tuple[str | None, str | None]:
    """The channel and thread a button was pressed in."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    message = body.get("message") or {}
    return channel, message.get("thread_ts") or message.get("ts")
