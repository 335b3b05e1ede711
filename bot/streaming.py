"""Streaming an answer (or re-index progress) into a chat message that can only be edited
now and then.

Slack and Discord rate-limit message edits (about one a second is safe). Tokens arrive on the
worker thread far faster; `LiveMessage` keeps the latest text, starts an edit on the event loop
only when one is due and none is in flight, and `settle()` waits for the last one, so a late
partial edit never overwrites the final message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


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


class LiveMessage:
    """A message edited from the worker thread. Create it on the event loop, inside the
    handler: edits run in the handler's context (discord.py keeps its webhook adapter in a
    ContextVar, which a plain `run_coroutine_threadsafe` from the worker would not see)."""

    def __init__(self, edit: Callable[[str], Awaitable[Any]], interval_s: float,
                 render: Callable[[str, str], str], clock: Callable[[], float] = time.monotonic) -> None:
        """`render(text so far, latest piece)` is what the message shows."""
        self._loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()
        self._text = StreamedText(interval_s, clock)
        self._edit = edit
        self._render = render
        self._pending: list[concurrent.futures.Future] = []

    def add(self, piece: str) -> None:
        """From the worker thread: record `piece`, and start an edit if one is due."""
        so_far = self._text.add(piece)
        if so_far is not None:
            self._pending.append(self._start(self._apply(self._render(so_far, piece))))

    async def settle(self) -> None:
        """Wait for the edits started so far (before the final message replaces them)."""
        for future in self._pending:
            await asyncio.wrap_future(future)

    async def _apply(self, text: str) -> None:
        try:
            await self._edit(text)
        except Exception as err:  # best effort: the final message still comes
            log.warning("could not update the message in place: %s", err)
        finally:
            self._text.edited()

    def _start(self, coro: Awaitable[Any]) -> concurrent.futures.Future:
        done: concurrent.futures.Future = concurrent.futures.Future()

        def start() -> None:
            task = self._loop.create_task(coro)  # type: ignore[arg-type]
            task.add_done_callback(lambda t: done.cancel() if t.cancelled() else
                                   done.set_exception(t.exception()) if t.exception() else done.set_result(None))

        self._loop.call_soon_threadsafe(start, context=self._context)
        return done
