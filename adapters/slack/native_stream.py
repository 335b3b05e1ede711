"""Slack's own streaming for answers in threads: chat.startStream, chat.appendStream (the new
text only, at most once per edit interval), chat.stopStream with the sources and buttons;
and the assistant thread status ("is looking through the docs…") while the answer is found.

Where a workspace or channel does not offer it, `start` says so and the caller uses the
placeholder-and-edits path; a workspace that does not know the method is not asked again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

LOOKING_STATUS = "is looking through the docs…"
# Errors that mean "not here": for the whole workspace (unknown method, a token type without
# it) or for this channel only (channel_type_not_supported).
_NOT_IN_WORKSPACE = frozenset({"unknown_method", "not_allowed_token_type", "method_deprecated",
                               "feature_not_enabled"})
_NOT_IN_CHANNEL = frozenset({"channel_type_not_supported", "not_in_channel", "restricted_action"})


class NativeStreams:
    def __init__(self, client: AsyncWebClient, outgoing: Callable[[str], str]) -> None:
        self.client = client
        self.outgoing = outgoing  # the text filter every message passes (no mass mentions)
        self.available = True  # until the workspace says otherwise

    async def start(self, channel: str, thread_ts: str, team: str | None, user: str) -> Stream | None:
        """A stream replying in the thread, or None where Slack does not stream here."""
        if not self.available:
            return None
        await self._status(channel, thread_ts, LOOKING_STATUS)
        try:
            response = await self.client.chat_startStream(channel=channel, thread_ts=thread_ts,
                                                          recipient_team_id=team, recipient_user_id=user)
        except SlackApiError as err:
            error = api_error(err)
            if error in _NOT_IN_WORKSPACE:
                self.available = False
                log.info("this workspace does not stream messages (%s); answers are edited in place", error)
            elif error not in _NOT_IN_CHANNEL:
                log.warning("chat.startStream in %s failed: %s; editing in place instead", channel, error)
            await self._status(channel, thread_ts, "")
            return None
        except Exception as err:  # the network, after the client's retries
            log.warning("chat.startStream in %s failed: %s; editing in place instead", channel, err)
            return None
        return Stream(self, channel, thread_ts, response["ts"])

    async def _status(self, channel: str, thread_ts: str, status: str) -> None:
        """The assistant thread status; only assistant threads have one, so a refusal is fine."""
        try:
            await self.client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread_ts, status=status)
        except Exception as err:
            log.debug("no thread status in %s: %s", channel, err)


class Stream:
    """One streaming message; `append` gets the whole text so far and sends what is new."""

    def __init__(self, streams: NativeStreams, channel: str, thread_ts: str, ts: str) -> None:
        self.streams = streams
        self.channel, self.thread_ts, self.ts = channel, thread_ts, ts
        self.sent = ""  # what the message shows so far
        self.failed = False

    async def append(self, text: str, complete: bool = False) -> None:
        safe = self.streams.outgoing(text)
        if not complete:  # hold back a "<…" not closed yet: it may become a mention to neutralise
            opened = safe.rfind("<")
            if opened > safe.rfind(">"):
                safe = safe[:opened]
        new = safe[len(self.sent):] if safe.startswith(self.sent) else ""
        if not new or self.failed:
            return
        try:
            await self.streams.client.chat_appendStream(channel=self.channel, ts=self.ts, markdown_text=new)
            self.sent = safe
        except Exception as err:
            self.failed = True  # stop appending; finish() posts the whole answer instead
            log.warning("chat.appendStream in %s failed: %s", self.channel, err)

    async def finish(self, text: str, blocks: list[dict[str, Any]] | None) -> bool:
        """Append the rest of `text`, then stop with `blocks` (sources, buttons). False when
        the message could not be completed (the caller posts the answer instead)."""
        await self.append(text, complete=True)
        if self.failed or self.sent != self.streams.outgoing(text):
            await self._stop(None)
            return False
        return await self._stop(blocks)

    async def _stop(self, blocks: list[dict[str, Any]] | None) -> bool:
        try:
            await self.streams.client.chat_stopStream(channel=self.channel, ts=self.ts, blocks=blocks)
            return True
        except Exception as err:
            log.warning("chat.stopStream in %s failed: %s", self.channel, err)
            return False
        finally:
            await self.streams._status(self.channel, self.thread_ts, "")


def api_error(err: SlackApiError) -> str:
    """What the Web API said went wrong (its "error" field; a non-JSON reply by its status)."""
    data = err.response.data
    return str(data.get("error")) if isinstance(data, dict) else f"HTTP {err.response.status_code}"
