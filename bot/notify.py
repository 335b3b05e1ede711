"""Posting to a named channel ("slack:C0123", "discord:4567") without knowing the platform.

Each chat adapter that is connected registers how it sends; a post to a platform nobody
registered (say the scheduler runs alone, without Slack) goes to the log instead of vanishing.
A post may carry a file (the digest's chart); it is attached where the platform registered a
way to send files, and left off (the text still goes) where not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

Sender = Callable[[str, str], None]  # (channel id on that platform, text)
FileSender = Callable[[str, str, str, bytes], None]  # (channel id, text, file name, file bytes)


class ChannelNotifier:
    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}
        self._file_senders: dict[str, FileSender] = {}

    def register(self, platform: str, send: Sender, send_file: FileSender | None = None) -> None:
        self._senders[platform] = send
        if send_file is not None:
            self._file_senders[platform] = send_file

    def post(self, channel: str, text: str, attachment: tuple[str, bytes] | None = None) -> None:
        """`attachment`: (file name, bytes), sent with the text where the platform takes files."""
        platform, _, target = channel.partition(":")
        send = self._senders.get(platform)
        if send is None or not target:
            log.warning("cannot post to %r (no %s connection in this process); the message was:\n%s",
                        channel, platform or "platform", text)
            return
        send_file = self._file_senders.get(platform)
        if attachment is not None and send_file is not None:
            send_file(target, text, *attachment)
        else:
            send(target, text)
