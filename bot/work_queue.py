"""The queue between chat platforms and the one model on the box.

Platforms acknowledge at once and hand the slow part (retrieval, composing, generation) to a
few worker threads; the generator decodes what they ask for together, in one batch. A
question that must wait gets a `Ticket` that says its place in line and about how long it
will wait (from how long recent answers took), so the asker can be told so. A question is
refused ("busy, try again in a minute") only when its wait would pass `max_wait_s`, or when
`capacity` questions already wait; it never rots in a queue or vanishes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

BUSY_TEXT = "I'm busy answering other questions right now. Please try again in a minute."
_FIRST_GUESS_S = 3.0  # how long an answer takes, until one has been timed
_SMOOTHING = 0.3  # weight of the latest answer's time in the running estimate


class QueueFull(Exception):
    pass


@dataclass(eq=False)
class Ticket(Generic[T]):
    """A question handed to the queue: its `future`, and while it waits, its place."""

    future: Future[T]
    _queue: WorkQueue
    _started: threading.Event = field(default_factory=threading.Event)

    def place(self) -> int:
        """1 for the next question to start, 2 for the one after it, ...; 0 once it runs."""
        return 0 if self._started.is_set() else self._queue.place_of(self)

    def wait_s(self) -> float:
        """About how long until it starts (0 once it runs)."""
        place = self.place()
        return self._queue.wait_estimate(place) if place else 0.0


class WorkQueue:
    def __init__(self, capacity: int = 100, workers: int = 1, max_wait_s: float = 300.0) -> None:
        self.capacity = capacity
        self.workers = workers
        self.max_wait_s = max_wait_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer")
        self._lock = threading.Lock()
        self._waiting: list[Ticket] = []  # in arrival order
        self._running = 0
        self._answer_s = _FIRST_GUESS_S  # running estimate of one answer's time on a worker

    @property
    def depth(self) -> int:
        """Questions waiting or being answered."""
        with self._lock:
            return len(self._waiting) + self._running

    def place_of(self, ticket: Ticket) -> int:
        with self._lock:
            try:
                return self._waiting.index(ticket) + 1
            except ValueError:
                return 0

    def wait_estimate(self, place: int) -> float:
        """About how long the question at `place` waits before it starts: the rounds of
        `workers` answers ahead of it, each taking about one answer's time."""
        return math.ceil(place / self.workers) * self._answer_s

    def submit(self, work: Callable[[], T]) -> Ticket[T]:
        """Run `work` on a worker thread; raise QueueFull when it would wait past `max_wait_s`
        or `capacity` questions already wait."""
        with self._lock:
            free = self._running + len(self._waiting) < self.workers
            place = 0 if free else len(self._waiting) + 1
            if place and (len(self._waiting) >= self.capacity or self.wait_estimate(place) > self.max_wait_s):
                raise QueueFull(BUSY_TEXT)
            ticket: Ticket[T] = Ticket(Future(), self)
            self._waiting.append(ticket)
        self._pool.submit(self._run, ticket, work)
        return ticket

    def _run(self, ticket: Ticket[T], work: Callable[[], T]) -> None:
        with self._lock:
            self._waiting.remove(ticket)
            if not ticket.future.set_running_or_notify_cancel():
                return  # cancelled while it waited: never started
            self._running += 1
            ticket._started.set()
        started = time.monotonic()
        try:
            result = work()
        except BaseException as err:
            ticket.future.set_exception(err)
        else:
            ticket.future.set_result(result)
        finally:
            with self._lock:
                self._running -= 1
                took = time.monotonic() - started
                self._answer_s += _SMOOTHING * (took - self._answer_s)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
