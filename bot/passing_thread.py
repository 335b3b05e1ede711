"""Run a piece of heavy work on a thread that ends when the work does.

torch keeps a pool of OpenMP workers for every thread that runs an operation on several
cores, for as long as that thread lives. Once the pools' workers outnumber the cores,
libgomp stops letting idle workers spin and puts them to sleep between operations, and every
small operation then waits for a wake-up: decoding on the generator's own thread ran at half
speed after the main thread had converted the model or a scheduler thread had re-indexed
(bench_generation). One-off heavy work (converting the model, embedding documents) runs
here, so its pool ends with it and the generator's thread keeps the cores to itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_on_passing_thread(work: Callable[[], T], name: str = "supportbot-work") -> T:
    """`work()`'s result (or its exception), computed on a new thread joined before returning."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as err:  # handed to the caller, traceback included
            outcome["error"] = err

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]
