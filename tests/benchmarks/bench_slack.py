"""Slack under a burst: 30 mentions at once against the app in HTTP mode on 127.0.0.1 (real
uvicorn, signed requests, local mock Web API), with the real core (sample docs, bundled
embedder and generator) behind the bounded queue.

Two setups side by side in one run: one question at a time (the old defaults: 1 worker, 8 may
wait, the rest told "busy") and the defaults (workers whose generation is decoded in one
batch; "busy" only past serve.max_wait_s; those waiting told their place). For each: ack
latency p50/p99 (Slack wants < 3 s), uncontended mentions of the burst's own question as the
baseline (each in a channel of its own, three per setup, the median), answered and busy counts,
latency p50/p95 and the last answer as a multiple of one alone.
Then Slack's retries: N mentions each delivered twice (the original and, at once, a retry
with the same event id and X-Slack-Retry-Num: 1), counting answers and duplicates.

Run: .venv/bin/python -m tests.benchmarks.bench_slack [--burst 30] [--redelivered 20] [--data-dir DIR]
(DIR with a trained voice active measures the model's lead-ins batched; without one the
bare base model writes no lead-in and answers need no generation at all)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bot.app.config import load_settings  # noqa: E402
from bot.evaluation import percentile  # noqa: E402
from bot.chat_flow import PLACE_END  # noqa: E402
from bot.work_queue import BUSY_TEXT, WorkQueue  # noqa: E402
from bot.app.application import App  # noqa: E402
from tests.slack_mock import SlackWorld  # noqa: E402


BURST_QUESTION = "How do I share a folder with my team?"  # asked with a number each time: no cached query
ALONE_RUNS = 3  # the baseline is the median of this many uncontended mentions (one alone varied 0.22-0.58 s)


def finished(world: SlackWorld, channel: str) -> float | None:
    """When the answer (or busy reply) in `channel` was posted, on the monotonic clock."""
    ends = [c.at for c in world.finals(channel)]
    return ends[0] if ends else None


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # figures show as they come, even into a file
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=30)
    parser.add_argument("--redelivered", type=int, default=20, help="mentions each delivered twice")
    parser.add_argument("--data-dir", type=Path, help="a data dir indexed before, e.g. with a trained voice active "
                                                      "(default: the sample docs indexed into a temp dir, no voice)")
    args = parser.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="supportbot-bench-slack-"))
    core = App(load_settings(None, data_dir=data))
    if not core.knowledge.store.live():
        core.index_ops.index(started_by="bench")
    serve = core.settings.serve
    setups = [("one at a time (the old defaults: 1 worker, 8 may wait)", WorkQueue(capacity=8, workers=1,
                                                                                   max_wait_s=1e9)),
              (f"defaults ({serve.workers} workers decoded in one batch, busy past {serve.max_wait_s:.0f} s)",
               core.work_queue)]
    print(f"{os.cpu_count()} cores; burst of {args.burst} mentions at once; voice: "
          f"{core.voices.active_voice() or 'none (the base model writes no lead-in)'}")
    for n, (label, queue) in enumerate(setups):
        with SlackWorld(core, queue) as world:
            if n == 0:  # the first answer loads the models; it is not measured
                world.mention("How much does the Team plan cost?", ts="1700000000.000001", channel="CWARM")
                world.api.wait_for(lambda calls: finished(world, "CWARM") is not None, timeout=600)
            # each setup asks in channels of its own: the same channel and ts would make the
            # second setup's questions follow-ups in the first's conversations (longer prompts)
            alone = statistics.median(one_alone(world, f"CBASE{n}{k}", f"{BURST_QUESTION} (alone {n}{k})",
                                                ts=f"170000000{n}.00000{k + 2}") for k in range(ALONE_RUNS))
            burst(world, args.burst, label, alone, core, setup=n)
            if n == len(setups) - 1:
                replies, duplicates = delivered_twice(world, args.redelivered)
                print(f"{args.redelivered} mentions each delivered twice (original + retry): {replies} answered, "
                      f"{duplicates} duplicate replies")


def one_alone(world: SlackWorld, channel: str, text: str, ts: str) -> float:
    """Seconds from one uncontended mention to its answer."""
    sent = time.monotonic()
    world.mention(text, ts=ts, channel=channel)
    world.api.wait_for(lambda calls: finished(world, channel) is not None, timeout=600)
    return finished(world, channel) - sent


def burst(world: SlackWorld, count: int, label: str, alone: float, core: App, setup: int = 0) -> None:
    """`count` mentions at once; prints acks, answered / busy, latency and the place-in-line
    messages shown."""
    acks: dict[str, float] = {}
    starts: dict[str, float] = {}
    lock = threading.Lock()
    batches = getattr(core.generator, "batches", None)
    largest_before = batches.largest_batch if batches else 0
    failed_before = batches.failed_rounds if batches else 0

    def mention(i: int) -> None:
        channel = f"CBURST{setup}{i:02d}"
        with lock:
            starts[channel] = time.monotonic()
        status, _, seconds = world.mention(f"{BURST_QUESTION} ({i})",
                                           ts=f"17000001{setup}1.{i:06d}", channel=channel)
        with lock:
            acks[channel] = seconds if status == 200 else float("inf")

    threads = [threading.Thread(target=mention, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    world.api.wait_for(lambda calls: all(finished(world, c) is not None for c in starts), timeout=1800)
    answered, busy = [], []
    for channel, start in starts.items():
        final = world.finals(channel)[0].body
        (busy if final["text"] == BUSY_TEXT else answered).append(finished(world, channel) - start)
    told = [c for c in world.api.of("chat.update") if c.body.get("text", "").endswith(PLACE_END)]
    ack_ms = [a * 1000 for a in acks.values()]
    print(f"\n== {label}")
    print(f"ack latency ms: p50 {percentile(ack_ms, 50)}  p99 {percentile(ack_ms, 99)}  max {max(ack_ms):.1f}")
    print(f"one mention alone (baseline, this setup; median of {ALONE_RUNS}): {alone:.2f} s")
    if answered:
        ms = sorted(answered)
        print(f"answered: {len(ms)}/{count}; latency s p50 {percentile(ms, 50):.2f}  p95 {percentile(ms, 95):.2f}  "
              f"last {ms[-1]:.2f}  (last = {ms[-1] / alone:.1f}x one alone)")
    print(f"busy replies: {len(busy)}" + (f"; latency s p50 {percentile(sorted(busy), 50):.2f}" if busy else ""))
    print(f"place-in-line messages shown: {len(told)} (e.g. {told[0].body['text']!r})" if told else
          "place-in-line messages shown: 0")
    if batches:
        print(f"largest generation batch: {max(batches.largest_batch, largest_before)}")
        # a failing generator still answers (composed facts, the learned greeting), only faster: count it
        print(f"generation rounds failed: {batches.failed_rounds - failed_before}")
    print(f"lost: {count - len(answered) - len(busy)}")


def delivered_twice(world: SlackWorld, count: int) -> tuple[int, int]:
    """Each mention and its retry sent at once, one pair at a time (so no reply is "busy");
    returns (threads answered, replies beyond one per thread)."""
    run = uuid.uuid4().hex[:8]
    for i in range(count):
        channel = f"CRETRY{i:02d}"
        event = {"type": "app_mention", "user": "UALICE", "text": "<@UBOT> How do I reset my password?",
                 "ts": f"1700000002.{i:06d}", "channel": channel, "event_ts": f"1700000002.{i:06d}"}
        event_id = f"EvRETRY{run}{i:04d}"  # unique per run: a reused data dir remembers delivered ids
        pair = [threading.Thread(target=world.event, args=(event, event_id, retry)) for retry in (None, 1)]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
        world.api.wait_for(lambda calls: finished(world, channel) is not None, timeout=600)
    time.sleep(3)  # a duplicate would show up by now
    channels = [f"CRETRY{i:02d}" for i in range(count)]
    posts = [len([c for c in world.api.of("chat.postMessage") if c.body["channel"] == ch]) for ch in channels]
    finals = [len(world.finals(ch)) for ch in channels]
    return sum(1 for n in finals if n), sum(max(0, p - 1) for p in posts) + sum(max(0, n - 1) for n in finals)


if __name__ == "__main__":
    main()
