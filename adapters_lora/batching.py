"""Many questions, one model: generation requests that arrive together are decoded as one
batch.

Decoding a 135M model on a CPU is bound by reading the weights, not by arithmetic, so eight
sequences decoded together cost little more than one (measured in
tests/benchmarks/bench_generation.py). One thread owns the model. Each round it takes the
waiting requests of one voice (the oldest request's; up to `max_batch`), left-pads them
into one batch and runs greedy decoding; each row streams its own tokens to its asker and
leaves the round as soon as it ends (end of sequence, its own token limit, or its asker
stopped reading): its asker is answered at once and the rows still going decode as a
smaller batch. An idle model waits `gather_s` (50 ms) for requests asked together to
arrive; requests that arrive during a round join the next one (not the running one: a
lead-in takes a few tokens, so rounds are short); a request for another voice waits for a
round of its voice.

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
from typing import Any

log = logging.getLogger(__name__)

_END = object()


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
    """Streamer and stopping criterion of one round (the decoding loop calls `put` with each
    step's tokens and the criterion after it, as transformers' `generate` would): routes each
    row's tokens to its request and ends each row on its own."""

    def __init__(self, requests: Sequence[GenerationRequest], decode: Callable[[list[int]], str],
                 eos_ids: set[int]) -> None:
        self.requests = list(requests)
        self.decode = decode
        self.eos_ids = eos_ids
        self._prompt_seen = False

    # streamer
    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt
            self._prompt_seen = True
            return
        for request, token in zip(self.requests, value.reshape(-1).tolist()):
            if request.finished:
                continue  # a row that ended gets padding
            if token in self.eos_ids and not request.ignore_eos:
                self._end(request)
                continue
            request.tokens.append(token)
            request.emit(self.decode(request.tokens))

    def end(self) -> None:
        for request in self.requests:
            self._end(request)

    # stopping criterion
    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        for request in self.requests:
            if not request.finished and (request.cancelled or len(request.tokens) >= request.max_new_tokens):
                self._end(request)
        return torch.tensor([r.finished for r in self.requests], dtype=torch.bool, device=input_ids.device)

    def _end(self, request: GenerationRequest) -> None:
        if not request.finished:
            request.emit(self.decode(request.tokens), final=True)
            request.finish()


class BatchScheduler:
    """The one thread that runs rounds: `run_round(requests)` decodes a batch of one voice."""

    def __init__(self, run_round: Callable[[list[GenerationRequest]], None], max_batch: int = 8,
                 gather_s: float = 0.05, on_start: Callable[[], None] | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.run_round = run_round
        self.on_start = on_start  # run first on the thread (e.g. its torch thread count)
        self.max_batch = max_batch
        self.gather_s = gather_s  # an idle model waits this long for questions asked together to join
        self._waiting: list[GenerationRequest] = []
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.rounds = 0  # rounds run, and the largest batch seen: for the benchmark and the tests
        self.largest_batch = 0

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

    def _next_round(self) -> list[GenerationRequest]:
        with self._condition:
            while True:
                for request in [r for r in self._waiting if r.cancelled]:
                    self._waiting.remove(request)
                    request.finish()
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
            batch = [r for r in self._waiting if r.voice == voice][: self.max_batch]
            for request in batch:
                self._waiting.remove(request)
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
                self.run_round(batch)
            except BaseException as err:  # every asker of the round hears why; the thread carries on
                log.debug("generation round failed", exc_info=True)
                for request in batch:
                    request.finish(err)
            else:
                for request in batch:
                    request.finish()
