"""Streamed edits: tokens from a worker thread become at most one edit per interval, one at
a time, and `settle` waits for the last (the final message must not be overwritten)."""

from __future__ import annotations

import asyncio

from bot.streaming import LiveMessage


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_edits_are_throttled_rendered_and_settled_and_a_failing_edit_does_not_stop_the_stream() -> None:
    async def scenario() -> list[str]:
        clock, shown = Clock(), []

        async def edit(text: str) -> None:
            if text == "ab …":
                raise ConnectionError("chat API down")  # logged; the next edit still happens
            shown.append(text)

        live = LiveMessage(edit, 1.0, render=lambda so_far, _: so_far + " …", clock=clock)

        def worker() -> None:  # what the answer thread does
            for piece, at in (("a", 0.5), ("b", 1.0), ("c", 1.2), ("d", 2.5), ("e", 2.6)):
                clock.now = at
                live.add(piece)
                if at in (1.0, 2.5):  # let the edit started here finish before the next token
                    asyncio.run_coroutine_threadsafe(live.settle(), loop).result(5)

        loop = asyncio.get_running_loop()
        await asyncio.to_thread(worker)
        await live.settle()
        return shown

    # 0.5: too soon after the placeholder; 1.0: due (fails); 1.2: too soon; 2.5: due; 2.6: too soon.
    assert asyncio.run(scenario()) == ["abcd …"]
