"""Many questions, one model: generation requests are decoded together as one batch, and
join or leave it as they come and go (continuous batching).

Decoding a 135M model on a CPU is bound by reading the weights, not by arithmetic, so eight
sequences decoded together cost little more than one (measured in
tests/benchmarks/bench_generation.py). One thread owns the model. Each round it takes the
waiting requests of one voice (the oldest request's; up to `max_batch`) and decodes them
greedily (adapters_lora.decoding); each row streams its own tokens to its asker and leaves
as soon as it ends (end of sequence, its own token limit, or its asker stopped reading),
and a request of the round's voice that arrives meanwhile joins it at the next step
(`join`), unless a request of another voice is waiting: then the round drains and that
voice gets the next one. An idle model waits `gather_s` (50 ms) for requests asked together
to arrive. Rows share one left-padded cache, as long as the longest row: a batch takes rows
while rows x the longest row's tokens (prompt and reply) stay within `max_batch_tokens`
(6,144: three prompts of 2,048 tokens, about 280 MB of keys and values for the bundled
model), so 32 lead-ins decode together where three long answers already fill it. At 16,384
(eight long prompts, 750 MB of keys and values) eight `free` answers to 1,900-token prompts
took a bare generator from 1.1 GB to a peak of 2.5-3.6 GB, and 38-49 s; now 1.8 GB and
24-27 s: reading a long prompt is bound by arithmetic, so batching long prompts saves little.

transformers 5's own continuous batching (`generate_batch`, paged attention) was measured
on 2 CPU cores and was 4.6x slower than this padded batch (bench_generation), so it is not
used here.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_END = object()
MAX_BATCH_TOKENS = 6_144  # rows x the longest row's prompt and reply tokens (see the module's docstring)


@dataclass(eq=False)
class GenerationRequest:
    """One asker's generation: its prompt tokens, token limit and voice (None: base model).
    The asker reads `pieces()`; the model's thread feeds it."""

    prompt: list[int]
    max_new_tokens: int
    voice: str | None
    ignore_eos: bool = False  # decode all max_new_tokens (benchmarks measure a fixed length)
    tokens: list[int] = field(default_factory=list)
    _out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _finished: bool = False
    _sent: str = ""

    def cancel(self) -> None:
        """The asker stopped reading: the row leaves its round at the next token."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def pieces(self) -> Iterator[str]:
        """The text as it is decoded, piece by piece; raises what failed the round."""
        while True:
            item = self._out.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    # ----- the model's side -----------------------------------------------------------
    def emit(self, text: str, final: bool = False) -> None:
        """`text`: everything decoded so far. A trailing replacement character is half of a
        multi-byte character: held back until its other half arrives (or the row ends)."""
        if not final and text.endswith("\ufffd"):
            return
        if len(text) > len(self._sent) and text.startswith(self._sent):
            self._out.put(text[len(self._sent):])
        self._sent = text

    def finish(self, error: BaseException | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        if error is not None:
            self._out.put(error)
        self._out.put(_END)

    @property
    def finished(self) -> bool:
        return self._finished


class BatchRows:
    """The requests of one round, in the order they were added (those that joined last):
    routes each row's tokens to its request and ends each row on its own."""

    def __init__(self, requests: Sequence[GenerationRequest], decode: Callable[[list[int]], str],
                 eos_ids: set[int]) -> None:
        self.requests = list(requests)
        self.decode = decode
        self.eos_ids = eos_ids

    def add(self, request: GenerationRequest) -> int:
        """A request joining the round: its row's place."""
        self.requests.append(request)
        return len(self.requests) - 1

    def push(self, rows: Sequence[int], tokens: Sequence[int]) -> None:
        """Each row's next token: streamed to its asker, or the row's end."""
        for row, token in zip(rows, tokens):
            request = self.requests[row]
            if request.finished:
                continue
            if token in self.eos_ids and not request.ignore_eos:
                self._end(request)
                continue
            request.tokens.append(token)
            request.emit(self.decode(request.tokens))

    def going(self, rows: Sequence[int]) -> list[bool]:
        """Whether each row decodes on; a row at its token limit or whose asker left ends here."""
        for row in rows:
            request = self.requests[row]
            if not request.finished and (request.cancelled or len(request.tokens) >= request.max_new_tokens):
                self._end(request)
        return [not self.requests[row].finished for row in rows]

    def end(self) -> None:
        for request in self.requests:
            self._end(request)

    def _end(self, request: GenerationRequest) -> None:
        if not request.finished:
            request.emit(self.decode(request.tokens), final=True)
            request.finish()


class BatchScheduler:
    """The one thread that runs rounds: `run_round(requests, join)` decodes a batch of one
    voice; `join(room)` hands it waiting requests of that voice while it runs."""

    def __init__(self, run_round: Callable[[list[GenerationRequest], Callable[[int], list[GenerationRequest]]], None],
                 max_batch: int = 8,
                 gather_s: float = 0.05, on_start: Callable[[], None] | None = None,
                 max_batch_tokens: int = MAX_BATCH_TOKENS, on_idle: Callable[[], None] | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.run_round = run_round
        self.on_start = on_start  # run first on the thread (e.g. its torch thread count)
        self.on_idle = on_idle  # run on the thread after a round when nothing waits (e.g. hand memory back)
        self.max_batch = max_batch
        self.max_batch_tokens = max_batch_tokens
        self.gather_s = gather_s  # an idle model waits this long for questions asked together to join
        self._waiting: list[GenerationRequest] = []
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._current: list[GenerationRequest] = []  # the round under way, joiners included
        self.rounds = 0  # rounds run, requests that joined one under way, the largest batch, rounds that
        self.joined = 0  # failed (each asker then hears why): for benchmarks and tests
        self.largest_batch = 0
        self.failed_rounds = 0

    def submit(self, request: GenerationRequest) -> None:
        with self._condition:
            if self._closed:
                raise RuntimeError("the generator is shutting down")
            self._waiting.append(request)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="supportbot-generate", daemon=True)
                self._thread.start()
                atexit.register(self.close)
            self._condition.notify()

    def close(self, timeout_s: float = 30.0) -> None:
        """Let the round under way finish and stop the thread (at exit: a thread still inside
        torch while the interpreter tears down aborts the process)."""
        with self._condition:
            self._closed = True
            for request in self._waiting:
                request.finish(RuntimeError("the generator is shutting down"))
            self._waiting.clear()
            self._condition.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def join(self, voice: str | None, room: int) -> list[GenerationRequest]:
        """Up to `room` waiting requests of `voice` that join the round under way (oldest
        first); none while a request of another voice waits, so the round ends and its voice
        gets the next one."""
        with self._condition:
            self._drop_cancelled()
            if room <= 0 or self._closed or any(r.voice != voice for r in self._waiting):
                return []
            joining = self._taken(self._waiting[:room], [r for r in self._current if not r.finished])
            del self._waiting[:len(joining)]
            self._current.extend(joining)
            self.joined += len(joining)
            self.largest_batch = max(self.largest_batch, self.max_batch - room + len(joining))  # rows now decoding
            return joining

    def _taken(self, candidates: list[GenerationRequest], running: list[GenerationRequest]) -> list[GenerationRequest]:
        """The leading `candidates` that fit beside `running` within max_batch_tokens (the
        first of a new round always does)."""
        taken: list[GenerationRequest] = []
        for request in candidates:
            rows = running + taken + [request]
            if (running or taken) and len(rows) * max(len(r.prompt) + r.max_new_tokens for r in rows) > \
                    self.max_batch_tokens:
                break
            taken.append(request)
        return taken

    def _drop_cancelled(self) -> None:
        for request in [r for r in self._waiting if r.cancelled]:
            self._waiting.remove(request)
            request.finish()

    def _next_round(self) -> list[GenerationRequest]:
        with self._condition:
            while True:
                self._drop_cancelled()
                if self._waiting or self._closed:
                    break
                self._condition.wait()
                if self._waiting and self.gather_s:  # woken from idle: let the rest of a burst arrive
                    deadline = time.monotonic() + self.gather_s
                    while not self._closed and len(self._waiting) < self.max_batch and time.monotonic() < deadline:
                        self._condition.wait(deadline - time.monotonic())
            if self._closed:
                return []
            voice = self._waiting[0].voice
            batch = self._taken([r for r in self._waiting if r.voice == voice][: self.max_batch], [])
            for request in batch:
                self._waiting.remove(request)
            self._current = batch  # requests that join the round are added to it
            return batch

    def _loop(self) -> None:
        if self.on_start is not None:
            self.on_start()
        while True:
            batch = self._next_round()
            if not batch:
                return
            self.rounds += 1
            self.largest_batch = max(self.largest_batch, len(batch))
            try:
                voice = batch[0].voice
                self.run_round(batch, lambda room: self.join(voice, room))
            except BaseException as err:  # every asker of the round hears why; the thread carries on
                self.failed_rounds += 1
                log.debug("generation round failed", exc_info=True)
                for request in self._round_requests():
                    request.finish(err)
            else:
                for request in self._round_requests():
                    request.finish()
            self._after_round()

    def _after_round(self) -> None:
        with self._condition:
            idle = not self._waiting and not self._closed
        if idle and self.on_idle is not None:
            try:
                self.on_idle()
            except Exception:  # housekeeping: the next round must not depend on it
                log.debug("generation on_idle failed", exc_info=True)

    def _round_requests(self) -> list[GenerationRequest]:
        with self._condition:
            requests, self._current = self._current, []
            return requests
