"""Memory of `supportbot serve` as a real process: Slack HTTP mode against a loopback Web
API, an index (the aws-docs-qa one by default, else the sample docs), the bundled models.
Prints resident memory (VmRSS) once /healthz says ok, and after answering a burst of
mentions at once (VmRSS and the peak VmHWM), for fp32 and int8 weights side by side.

Run: .venv/bin/python -m tests.benchmarks.bench_memory [--data-dir DIR] [--mentions 8]
(DIR: a data dir indexed before, e.g. by bench_answers --aws-index; default: the sample
docs indexed into a temp dir)
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from adapters_lora.base_model import resolve_base_model  # noqa: E402
from bot.app.application import App  # noqa: E402
from bot.app.config import load_settings  # noqa: E402
from tests.slack_mock import MockSlackAPI  # noqa: E402
from tests.test_serve_process import mention, serve, statuses_until_ok  # noqa: E402


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def measure(data: Path, models: Path, weights: str, mentions: int) -> tuple[dict, dict, int]:
    with MockSlackAPI() as api:
        process, slack_port, health_port = serve(data, models, api, SUPPORTBOT_GENERATION__WEIGHTS=weights,
                                                 SUPPORTBOT_SERVE__HEALTH_HOST="127.0.0.1")
        try:
            if statuses_until_ok(health_port, process)[-1:] != ["ok"]:
                raise SystemExit(f"serve did not start: {process.communicate(timeout=30)[1][-2000:]}")
            started = memory_kb(process.pid)
            url = f"http://127.0.0.1:{slack_port}/slack/events"
            run = uuid.uuid4().hex[:8]  # event ids unique per run: the data dir remembers delivered ones
            threads = [threading.Thread(target=mention, args=(url, f"How do I get started? ({i})",
                                                              f"1700000700.{i:06d}", f"EvMEM{run}{i:04d}"))
                       for i in range(mentions)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            api.wait_for(lambda calls: len([c for c in calls if c.method == "chat.update" and c.body.get("blocks")])
                         >= mentions, timeout=900)
            answered = memory_kb(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=120)
    return started, answered, mentions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, help="a data dir with an index (default: sample docs, indexed now)")
    parser.add_argument("--mentions", type=int, default=8)
    args = parser.parse_args()
    data = args.data_dir
    if data is None:
        data = Path(tempfile.mkdtemp(prefix="supportbot-bench-mem-"))
        App(load_settings(None, data_dir=data)).index_ops.index(started_by="bench")
    models = data / "models"
    resolve_base_model("bundled", models)  # converted here: a conversion inside serve would inflate its memory
    chunks = sum(1 for _ in (data / "index").rglob("*.lance"))
    print(f"data dir {data} ({chunks} lance files); {args.mentions} mentions at once")
    for weights in ("fp32", "int8"):
        time.sleep(1)
        started, answered, n = measure(data, models, weights, args.mentions)
        print(f"serve, {weights} weights: ready {started['VmRSS'] / 1024:.0f} MiB RSS (peak while starting "
              f"{started['VmHWM'] / 1024:.0f} MiB); after {n} answers {answered['VmRSS'] / 1024:.0f} MiB RSS, "
              f"peak {answered['VmHWM'] / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
