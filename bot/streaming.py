"""Streaming an answer into a chat message that can only be edited now and then.

Slack and Discord rate-limit message edits (about one a second is safe). Tokens arrive on the
worker thread far faster; this keeps the latest text and says when an edit is due, so at most
one edit is in flight and the last one always shows the whole text.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class StreamedText:
    def __init__(self, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._last_edit = clock()  # the placeholder was just posted
        self._in_flight = False

    def add(self, piece: str) -> str | None:
        """Append a token; returns the text to show now if an edit is due (then call `edited`)."""
        with self._lock:
            self._parts.append(piece)
            if self._in_flight or self.clock() - self._last_edit < self.interval_s:
                return None
            self._in_flight = True
            return "".join(self._parts)

    def edited(self) -> None:
        with self._lock:
            self._in_flight = False
            self._last_edit = self.clock()

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)
