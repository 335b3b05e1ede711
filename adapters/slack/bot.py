"""Slack: mentions, thread follow-ups, DMs, /ask, /supportbot admin commands, feedback.

The bolt adapter rule: each listener translates a Slack payload into a core call (the chat
flow) and what comes back into Slack messages; no answering or chat logic lives here. Bolt acks
every request at once; the answer is produced on the shared bounded work queue, streamed into
a placeholder message by edits at most once a second, and always ends in a visible reply:
the answer, "nothing relevant", an error, or "busy".
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as kit
from adapters.slack.mrkdwn import plain_text
from adapters.slack.native_stream import NativeStreams, api_error
from bot.chat_flow import (
    ASK_USAGE_TEXT,
    EMPTY_QUESTION_TEXT,
    LOOKING_UP_TEXT,
    WORKING_TEXT,
    Asker,
    ChatFlow,
    ChatReply,
)
from bot.rendering import freshness_line
from bot.types import Question

log = logging.getLogger(__name__)

PLACEHOLDER = f"_{LOOKING_UP_TEXT}_"
_MENTION = re.compile(r"<@[A-Z0-9]+>\s*")
# `/supportbot NAME` as Slack spells the core's commands.
_ADMIN_COMMANDS = ("reindex", "status", "voice", "insights", "help")
ADMIN_SPELLING = "/supportbot {name}"
SLACK_HELP = ("Mention me or DM me a question, or use `/ask <question>` (only you see the answer). "
              "Admins: `/supportbot reindex`, `/supportbot status`, "
              "`/supportbot voice [list | activate NAME | rollback]`, `/supportbot insights [7d]`.")
COMMANDS = ("/ask", "/supportbot")
EVENTS = ("app_mention", "message")
# What the listeners need (deploy/slack-manifest.yaml asks for exactly these).
SCOPES = frozenset({"app_mentions:read", "channels:history", "groups:history", "im:history", "chat:write",
                    "commands", "usergroups:read", "assistant:write", "files:write"})
_GROUP_TTL_S = 300


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str
    signing_secret: str | None = None  # HTTP mode
    api_base_url: str = "https://slack.com/api/"
    admin_group: str | None = None
    human_group: str | None = None
    edit_interval_s: float = 1.0
    native_streaming: bool = True  # where the workspace offers chat.startStream; else edits


class SlackBot:
    def __init__(self, chat: ChatFlow, settings: SlackSettings) -> None:
        self.chat = chat
        self.settings = settings
        self.client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_base_url, retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),  # honours Retry-After
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ])
        self.app = AsyncApp(client=self.client, signing_secret=settings.signing_secret or "socket-mode",
                            request_verification_enabled=settings.signing_secret is not None,
                            process_before_response=False, raise_error_for_unhandled_request=False,
                            logger=_bolt_logger())
        self._admin_group: tuple[float, frozenset[str]] = (0.0, frozenset())
        self.streams = NativeStreams(self.client, lambda text: kit.without_mass_mentions(text, settings.human_group))
        self.streams.available = settings.native_streaming
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

    async def _on_mention(self, event: dict, body: dict) -> None:
        if not self._first_delivery(body):
            return
        channel, thread_ts = event["channel"], event.get("thread_ts") or event["ts"]
        await self._answer_in_thread(event["user"], _MENTION.sub("", event.get("text", "")).strip(), channel, thread_ts,
                                     body.get("team_id"))

    async def _on_message(self, event: dict, context: Any, body: dict) -> None:
        if event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return  # edits, joins, other bots, our own messages
        text = event.get("text", "")
        if context.bot_user_id and f"<@{context.bot_user_id}>" in text:
            return  # the app_mention listener answers it
        if not self._first_delivery(body):
            return
        channel = event["channel"]
        if event.get("channel_type") == "im":
            await self._answer_in_thread(event["user"], text.strip(), channel, event.get("thread_ts"),
                                         body.get("team_id"))
        elif event.get("thread_ts") and self.chat.owns_thread(_conversation(channel, event["thread_ts"])):
            await self._answer_in_thread(event["user"], text.strip(), channel, event["thread_ts"], body.get("team_id"))

    async def _on_ask(self, ack: Callable[..., Awaitable], command: dict, respond: Callable[..., Awaitable]) -> None:
        text = command.get("text", "").strip()
        if not text:
            await ack(response_type="ephemeral", text=ASK_USAGE_TEXT)
            return
        await ack(response_type="ephemeral", text=PLACEHOLDER)
        question = Question(text=text, user_id=f"slack:{command['user_id']}", conversation_id="",
                            channel_id=command.get("channel_id"), platform="slack")
        async with self.chat.handling():
            reply = await self.chat.ask(question, on_place=lambda text: respond(
                response_type="ephemeral", replace_original=True, text=text))
            text_out, blocks = _reply_blocks(reply, can_post=True)
            await respond(response_type="ephemeral", replace_original=True, **self._outgoing(text_out, blocks))

    async def _on_admin(self, ack: Callable[..., Awaitable], command: dict, respond: Callable[..., Awaitable]) -> None:
        words = command.get("text", "").split()
        name = words[0].lower() if words else "help"
        if name not in _ADMIN_COMMANDS:
            await ack(response_type="ephemeral",
                      text=f"Unknown command `{words[0]}`. Try `/supportbot help` (reindex, status, voice, insights, help).")
            return
        await ack(response_type="ephemeral", text=WORKING_TEXT)
        user = command["user_id"]
        asker = Asker(f"slack:{user}", "slack", command.get("channel_id"), await self._in_admin_group(user))
        reply = await self.chat.command_live(
            name, " ".join(words[1:]), asker,
            edit=lambda line: respond(response_type="ephemeral", replace_original=True, text=line),
            interval_s=self.settings.edit_interval_s, spelling=ADMIN_SPELLING)
        if name == "help":  # the core's help names the console's commands; say how Slack spells them
            body = SLACK_HELP
        else:
            body = f"```{reply.text}```" if reply.monospace else reply.text
        await respond(response_type="ephemeral", replace_original=True, **self._outgoing(body))

    # ----- answering ------------------------------------------------------------------
    async def _answer_in_thread(self, user: str, text: str, channel: str, thread_ts: str | None,
                                team: str | None = None) -> None:
        """Slack's own streaming where it is offered, else a placeholder edited as the answer
        is written; then the answer with sources and buttons. Never silence."""
        async with self.chat.handling():  # a shutdown waits until the answer is posted
            await self._write_in_thread(user, text, channel, thread_ts, team)

    async def _write_in_thread(self, user: str, text: str, channel: str, thread_ts: str | None,
                               team: str | None) -> None:
        conversation = _conversation(channel, thread_ts)
        if not text:
            await self._post(channel, thread_ts, EMPTY_QUESTION_TEXT)
            return
        if thread_ts:
            self.chat.remember_thread(conversation)
        question = Question(text=text, user_id=f"slack:{user}", conversation_id=conversation, channel_id=channel,
                            platform="slack")
        stream = await self.streams.start(channel, thread_ts, team, user) if thread_ts else None
        if stream is not None:
            reply = await self.chat.ask_live(question, stream.append, self.settings.edit_interval_s,
                                             unfinished="", show_place=False)  # a stream only appends
            fallback, blocks = _reply_blocks(reply)
            sources_and_buttons = [b for b in blocks or [] if b["type"] != "section"]  # the text was streamed
            if not await stream.finish(reply.text, kit.without_mass_mentions(sources_and_buttons,
                                                                             self.settings.human_group) or None):
                await self._post(channel, thread_ts, fallback, blocks)
            return
        ts = await self._post(channel, thread_ts, PLACEHOLDER)
        if ts is None:
            return  # could not even post: logged by _post
        reply = await self.chat.ask_live(question, lambda text: self._edit(channel, ts, text),
                                         self.settings.edit_interval_s)
        fallback, blocks = _reply_blocks(reply)
        if not await self._update(channel, ts, fallback, blocks):  # never leave the placeholder without an ending
            await self._post(channel, thread_ts, fallback, blocks)

    # ----- buttons and the feedback modal ---------------------------------------------
    async def _on_thumbs_up(self, ack: Callable[..., Awaitable], body: dict, action: dict,
                            respond: Callable[..., Awaitable]) -> None:
        await ack()
        rated = self.chat.rate(action["value"], f"slack:{body['user']['id']}", +1)
        await respond(response_type="ephemeral", replace_original=False, text=rated.message)

    async def _on_thumbs_down(self, ack: Callable[..., Awaitable], body: dict, action: dict,
                              respond: Callable[..., Awaitable]) -> None:
        await ack()
        user = body["user"]["id"]
        rated = self.chat.rate(action["value"], f"slack:{user}", -1)
        if not rated.recorded:
            await respond(response_type="ephemeral", replace_original=False, text=rated.message)
            return
        channel, thread_ts = _where(body)
        admin = await self._is_admin(user)
        try:
            await self.client.views_open(trigger_id=body["trigger_id"],
                                         view=kit.feedback_modal(action["value"], channel, thread_ts, admin))
        except SlackApiError as err:  # the 👎 itself is stored; the optional comment form is a bonus
            log.warning("could not open the feedback form: %s", api_error(err))

    async def _on_feedback_modal(self, ack: Callable[..., Awaitable], body: dict, view: dict) -> None:
        await ack()
        user = body["user"]["id"]
        answer_id = view.get("private_metadata", "").split("|", 1)[0]
        values = view.get("state", {}).get("values", {})
        wrong = (values.get(kit.WRONG_BLOCK, {}).get(kit.WRONG_INPUT, {}).get("value") or "").strip()
        fix = (values.get(kit.FIX_BLOCK, {}).get(kit.FIX_INPUT, {}).get("value") or "").strip()
        if wrong or fix:
            self.chat.comment(answer_id, f"slack:{user}", wrong, fix, by_admin=await self._is_admin(user))

    async def _on_human(self, ack: Callable[..., Awaitable], body: dict, action: dict) -> None:
        await ack()
        channel, thread_ts = _where(body)
        group = f"<!subteam^{self.settings.human_group}>" if self.settings.human_group else None
        self.chat.escalate(action["value"], f"slack:{body['user']['id']}")
        if channel:
            await self._post(channel, thread_ts, self.chat.human_request(group, f"<@{body['user']['id']}>"))

    async def _on_post(self, ack: Callable[..., Awaitable], body: dict, action: dict,
                       respond: Callable[..., Awaitable]) -> None:
        await ack()
        channel, _ = _where(body)
        stored = self.chat.stored_answer(action["value"])
        if isinstance(stored, str):
            await respond(response_type="ephemeral", replace_original=False, text=stored)
            return
        heading = f"<@{body['user']['id']}> asked: {kit.escape(stored.question)}\n\n"
        posted = await self._post(channel, None, plain_text(stored.answer), kit.answer_blocks(
            stored.answer, stored.citations, stored.id, stored.abstained, heading=heading))
        if posted:
            await respond(delete_original=True)

    # ----- Web API helpers: failures are logged, never raised into Bolt ------------------
    async def _post(self, channel: str | None, thread_ts: str | None, text: str,
                    blocks: list | None = None) -> str | None:
        try:
            response = await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, unfurl_links=False,
                                                           **self._outgoing(text, blocks))
            return response.get("ts")
        except SlackApiError as err:
            log.error("chat.postMessage to %s failed: %s", channel, api_error(err))
        except Exception as err:  # the network itself (after the client's retries)
            log.error("chat.postMessage to %s failed: %s", channel, err)
        return None

    async def _update(self, channel: str, ts: str, text: str, blocks: list | None = None) -> bool:
        try:
            await self.client.chat_update(channel=channel, ts=ts, **self._outgoing(text, blocks or []))
            return True
        except SlackApiError as err:
            log.error("chat.update in %s failed: %s", channel, api_error(err))
        except Exception as err:
            log.error("chat.update in %s failed: %s", channel, err)
        return False

    async def _edit(self, channel: str, ts: str, text: str) -> None:
        """A streaming edit (LiveMessage logs a failed one and carries on)."""
        await self.client.chat_update(channel=channel, ts=ts, **self._outgoing(text))

    def _outgoing(self, text: str, blocks: list | None = None) -> dict[str, Any]:
        """The text and blocks of any message the bot sends, with no mass mention left in
        them (<!channel>, <!here>, <!everyone>, a user group other than the human helpers)."""
        fields: dict[str, Any] = {"text": kit.without_mass_mentions(text[:3900], self.settings.human_group)}
        if blocks is not None:
            fields["blocks"] = kit.without_mass_mentions(blocks, self.settings.human_group)
        return fields

    async def post_notice(self, channel: str, text: str, file: tuple[str, bytes] | None = None) -> None:
        """For the admins' channel (re-index summaries, the digest with its chart). Should the
        upload be refused (an app installed before it asked for files:write), the text still goes."""
        if file is not None:
            try:
                await self.client.files_upload_v2(channel=channel, filename=file[0], file=file[1], title=file[0],
                                                  initial_comment=self._outgoing(text)["text"])
                return
            except (SlackApiError, SlackClientError) as err:
                log.warning("could not attach %s in %s (%s); posting the text alone", file[0], channel,
                            api_error(err) if isinstance(err, SlackApiError) else err)
        await self._post(channel, None, text)

    def _first_delivery(self, body: dict) -> bool:
        """Slack re-sends an event it thinks went unacknowledged (X-Slack-Retry-Num 1, 2, 3),
        maybe to another replica: each event id is answered once."""
        event_id = body.get("event_id")
        if not event_id or self.chat.first_delivery(f"slack:{event_id}"):
            return True
        log.info("event %s delivered again; already handled", event_id)
        return False

    async def _is_admin(self, user: str) -> bool:
        return self.chat.is_admin(Asker(f"slack:{user}", "slack", platform_admin=await self._in_admin_group(user)))

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
                log.warning("could not read admin group %s: %s", group, api_error(err))
        return user in members


class _OurClientOnPurpose(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN (which it reads from the environment) is unused when a
    client is given; the client is ours on purpose (retries, the API base URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _OurClientOnPurpose) for f in logger.filters):
        logger.addFilter(_OurClientOnPurpose())
    return logger


def _reply_blocks(reply: ChatReply, can_post: bool = False) -> tuple[str, list | None]:
    """The fallback text and the Block Kit of an answer (text alone for busy or an error)."""
    answer = reply.answer
    if answer is None or reply.answer_id is None:
        return reply.text, None
    return plain_text(answer.answer), kit.answer_blocks(answer.answer, answer.citations, reply.answer_id,
                                                        answer.abstained, can_post=can_post,
                                                        footer=freshness_line(answer))


def _conversation(channel: str, thread_ts: str | None) -> str:
    return f"slack:{channel}:{thread_ts or 'dm'}"


def _where(body: dict) -> tuple[str | None, str | None]:
    """The channel and thread a button was pressed in."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    message = body.get("message") or {}
    return channel, message.get("thread_ts") or message.get("ts")
