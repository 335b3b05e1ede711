"""Posting to a named channel ("slack:C0123", "discord:4567") without knowing the platform.

Each chat adapter that is connected registers how it sends; a post to a platform nobody
registered (say the scheduler runs alone, without Slack) goes to the log instead of vanishing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

Sender = Callable[[str, str], None]  # (channel id on that platform, text)


class ChannelNotifier:
    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}

    def register(self, platform: str, send: Sender) -> None:
        self._senders[platform] = send

    def post(self, channel: str, text: str) -> None:
        platform, _, target = channel.partition(":")
        send = self._senders.get(platform)
        if send is None or not target:
            log.warning("cannot post to %r (no %s connection in this process); the message was:\n%s",
                        channel, platform or "platform", text)
            return
        send(target, text)
