"""The bounded queue between chat platforms and the one model on the box.

Platforms acknowledge at once and hand the slow part (retrieval + generation) to a few worker
threads. Only `capacity` questions may wait; the next one is refused straight away so the
adapter can say "busy, try again in a minute" instead of letting it rot in a queue or vanish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

BUSY_TEXT = "I'm busy answering other questions right now. Please try again in a minute."


class QueueFull(Exception):
    pass


class WorkQueue:
    def __init__(self, capacity: int = 8, workers: int = 1) -> None:
        self.capacity = capacity
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer")
        self._lock = threading.Lock()
        self._pending = 0  # waiting or running

    @property
    def depth(self) -> int:
        return self._pending

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """Run `work` on a worker thread, or raise QueueFull when `capacity` are already waiting."""
        with self._lock:
            if self._pending >= self.capacity + self.workers:
                raise QueueFull(BUSY_TEXT)
            self._pending += 1
        future = self._pool.submit(work)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
