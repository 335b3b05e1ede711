"""The work queue: a question that must wait knows its place and about how long; a busy
reply comes only past the maximum wait (or the hard cap), and nothing is lost."""

from __future__ import annotations

import threading
import time

import pytest

from bot.chat_flow import place_text
from bot.work_queue import BUSY_TEXT, QueueFull, WorkQueue


def held(gate: threading.Event, value: str):
    def work() -> str:
        gate.wait(10)
        return value
    return work


def test_waiting_questions_know_their_place_and_move_up() -> None:
    queue = WorkQueue(capacity=10, workers=2, max_wait_s=600)
    gate = threading.Event()
    running = [queue.submit(held(gate, f"r{i}")) for i in range(2)]
    waiting = [queue.submit(held(gate, f"w{i}")) for i in range(3)]
    deadline = time.monotonic() + 10
    while not all(t.future.running() for t in running) and time.monotonic() < deadline:
        time.sleep(0.01)  # the workers pick them up
    assert [t.place() for t in running] == [0, 0]
    assert [t.place() for t in waiting] == [1, 2, 3]
    # two workers, about 3 s an answer until one is timed: places 1-2 wait one round, place 3 two
    assert [t.wait_s() for t in waiting] == [3.0, 3.0, 6.0]
    assert queue.depth == 5
    gate.set()
    assert [t.future.result(10) for t in running + waiting] == ["r0", "r1", "w0", "w1", "w2"]
    assert queue.depth == 0 and all(t.place() == 0 for t in waiting)


def test_busy_only_past_the_maximum_wait_or_the_cap() -> None:
    queue = WorkQueue(capacity=100, workers=1, max_wait_s=7)
    gate = threading.Event()
    tickets = [queue.submit(held(gate, str(i))) for i in range(3)]  # running, then places 1 and 2 (3 s, 6 s)
    with pytest.raises(QueueFull, match="busy") as refused:
        queue.submit(held(gate, "late"))  # place 3: about 9 s, past 7 s
    assert str(refused.value) == BUSY_TEXT
    capped = WorkQueue(capacity=1, workers=1, max_wait_s=600)
    first, second = capped.submit(held(gate, "a")), capped.submit(held(gate, "b"))
    with pytest.raises(QueueFull):
        capped.submit(held(gate, "c"))
    gate.set()
    assert [t.future.result(10) for t in tickets] == ["0", "1", "2"]
    assert (first.future.result(10), second.future.result(10)) == ("a", "b")


def test_the_estimate_follows_how_long_answers_really_take() -> None:
    queue = WorkQueue(capacity=10, workers=1, max_wait_s=600)
    for _ in range(12):
        queue.submit(lambda: None).future.result(10)  # instant answers pull the 3 s first guess down
    assert queue.wait_estimate(1) < 0.1


def test_a_question_cancelled_while_waiting_is_never_started() -> None:
    queue = WorkQueue(capacity=10, workers=1, max_wait_s=600)
    gate, started = threading.Event(), []
    first = queue.submit(held(gate, "first"))
    later = queue.submit(lambda: started.append("later"))
    assert later.future.cancel()
    gate.set()
    assert first.future.result(10) == "first"
    queue.shutdown()
    assert started == [] and queue.depth == 0


def test_the_place_reads_as_a_person_would_say_it() -> None:
    assert place_text(1, 2.2) == "You're 1st in line, about 5 s. I'll answer here."
    assert place_text(3, 17) == "You're 3rd in line, about 20 s. I'll answer here."
    assert place_text(12, 40) == "You're 12th in line, about 40 s. I'll answer here."
    assert place_text(22, 130) == "You're 22nd in line, about 3 min. I'll answer here."
