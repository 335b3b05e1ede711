"""`supportbot serve` as a real process (Slack HTTP mode, loopback Web API): /healthz says
"starting" until the models are loaded, and SIGTERM mid-answer drains: the answer in flight
is finished, a question that arrives meanwhile is told to ask again, and the exit code is 0."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.chat_flow import RESTARTING_TEXT
from adapters.slack import blocks as kit
from bot.app.pg_state import PostgresStateDatabase
from bot.feedback import FeedbackStore, UnknownAnswer
from tests.pg_server import server_binaries
from tests.slack_mock import (BOT_TOKEN, BOT_USER, FORM, JSON, SIGNING_SECRET, MockSlackAPI, action_body, event_body,
                              send)
from tests.test_slack import actions_of

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health(port: int) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
    except OSError:
        return None  # not listening yet


def mention(url: str, text: str, ts: str, event_id: str) -> int:
    event = {"type": "app_mention", "user": "UALICE", "text": f"<@{BOT_USER}> {text}", "ts": ts, "channel": "C0001",
             "event_ts": ts}
    return send(url, event_body(event, event_id), JSON)[0]


def serve(data: Path, model_cache: Path, api: MockSlackAPI, **extra: str) -> tuple[subprocess.Popen, int, int]:
    """A `supportbot serve` process in Slack HTTP mode on free ports: (process, slack port, health port)."""
    slack_port, health_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")}
    env.update({"SUPPORTBOT_DATA_DIR": str(data), "SUPPORTBOT_MODEL_CACHE_DIR": str(model_cache),
                "SUPPORTBOT_SLACK__MODE": "http", "SUPPORTBOT_SLACK__HOST": "127.0.0.1",
                "SUPPORTBOT_SLACK__PORT": str(slack_port), "SUPPORTBOT_SLACK__API_BASE_URL": api.base_url,
                "SUPPORTBOT_SERVE__HEALTH_HOST": "127.0.0.1", "SUPPORTBOT_SERVE__HEALTH_PORT": str(health_port),
                "SUPPORTBOT_SLACK__EDIT_INTERVAL_S": "0.2", "SUPPORTBOT_REINDEX__IN_SERVE": "false",
                "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra})
    process = subprocess.Popen([sys.executable, "-m", "bot", "-v", "serve"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, slack_port, health_port


def statuses_until_ok(port: int, process: subprocess.Popen) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and "ok" not in seen and process.poll() is None:
        answer = health(port)
        if answer is not None:
            seen.append(answer[1]["status"])
        time.sleep(0.1)
    return seen


def test_sigterm_mid_answer_drains_and_exits_0(core, model_cache: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(core.settings.data_dir / "index", data / "index")  # the session's index, as built
    with MockSlackAPI() as api:
        process, slack_port, health_port = serve(data, model_cache, api)
        try:
            seen = statuses_until_ok(health_port, process)
            assert seen and seen[0] == "starting" and seen[-1] == "ok", seen  # models loaded before connecting
            url = f"http://127.0.0.1:{slack_port}/slack/events"
            # Slack is slow to take the finished answer: the bot is still delivering it when the deploy comes
            final_posted = api.hold(lambda method, body: method == "chat.update" and bool(body.get("blocks")))
            assert mention(url, "How much does the Team plan cost?", "1700000500.000100", "EvDRAIN1") == 200
            api.wait_for(lambda calls: any(c.method == "chat.postMessage" for c in calls))
            process.send_signal(signal.SIGTERM)  # a deploy, mid-answer
            assert mention(url, "How do I reset my password?", "1700000500.000200", "EvDRAIN2") == 200
            api.wait_for(lambda calls: any(c.method == "chat.update" and c.body.get("text") == RESTARTING_TEXT
                                           for c in calls))
            api.wait_for(lambda calls: any(c.method == "chat.update" and c.body.get("blocks") for c in calls))
            time.sleep(5)  # without the drain covering delivery the process was gone 1.6 s after this point
            assert process.poll() is None  # still draining: Slack has not confirmed the answer yet
            final_posted.set()
            _, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, err[-3000:]
        assert "Traceback" not in err and "Event loop is closed" not in err
        last = {}
        for call in api.of("chat.update"):
            last[call.body["ts"]] = call.body
        first, second = api.of("chat.postMessage")[:2]
        assert first.body["thread_ts"] == "1700000500.000100" and second.body["thread_ts"] == "1700000500.000200"
        answered = [body for body in last.values() if body.get("blocks")]
        assert len(answered) == 1 and "8" in answered[0]["text"]  # the answer in flight was finished ($8)
        assert any(body["text"] == RESTARTING_TEXT for body in last.values())  # the late asker was told


def test_two_replicas_answer_each_event_once_and_share_thread_memory(core, model_cache: Path, tmp_path: Path,
                                                                      request: pytest.FixtureRequest) -> None:
    # where both replicas keep answers and delivered ids: PostgreSQL (replicas on several hosts), or
    # one host's SQLite file where the server is not installed (one run of this test: it is slow)
    shared = ({"SUPPORTBOT_STATE__URL": request.getfixturevalue("postgres").fresh_database(),
               "SUPPORTBOT_STATE__RETRY_S": "0.05"} if server_binaries()
              else {"SUPPORTBOT_FEEDBACK_DB": str(tmp_path / "shared" / "feedback.sqlite")})
    processes = []
    placeholders: list[dict] = []
    answered: list[dict] = []
    with MockSlackAPI() as api:
        try:
            ports = []
            for name in ("a", "b"):
                shutil.copytree(core.settings.data_dir / "index", tmp_path / name / "index")
                process, slack_port, health_port = serve(tmp_path / name, model_cache, api, **shared)
                processes.append(process)
                ports.append((slack_port, health_port))
            for process, (_, health_port) in zip(processes, ports):
                assert statuses_until_ok(health_port, process)[-1] == "ok"
            a, b = (f"http://127.0.0.1:{slack_port}/slack/events" for slack_port, _ in ports)
            event = {"type": "app_mention", "user": "UALICE", "text": f"<@{BOT_USER}> How much does the Team plan "
                     "cost?", "ts": "1700000600.000100", "channel": "C0001", "event_ts": "1700000600.000100"}
            assert send(a, event_body(event, "EvREPLICA1"), JSON)[0] == 200
            retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
            assert send(b, event_body(event, "EvREPLICA1"), JSON, headers=retry)[0] == 200  # the retry, elsewhere
            api.wait_for(lambda calls: any(c.method == "chat.update" and c.body.get("blocks") for c in calls))
            time.sleep(2)
            placeholders = [c.body for c in api.of("chat.postMessage")]

            follow_up = {"type": "message", "channel_type": "channel", "user": "UALICE", "text": "and for Business?",
                         "ts": "1700000600.000200", "thread_ts": "1700000600.000100", "channel": "C0001"}
            assert send(b, event_body(follow_up, "EvREPLICA2"), JSON)[0] == 200  # the other replica, no mention
            calls = api.wait_for(lambda calls: len([c for c in calls if c.method == "chat.update"
                                                    and c.body.get("blocks")]) >= 2)
            answered = [c.body for c in calls if c.method == "chat.postMessage"]

            first_final = next(c.body for c in calls if c.method == "chat.update" and c.body.get("blocks"))
            answer_id = actions_of(first_final["blocks"])[kit.UP]  # A's answer, rated through B (twice)
            for _ in range(2):
                assert send(b, action_body(kit.UP, answer_id, "UBOB", api.response_url("up")), FORM)[0] == 200
            api.wait_for(lambda calls: len([c for c in calls if c.method == "response_url"
                                            and c.body.get("path") == "/response/up"]) == 2)
            if "SUPPORTBOT_STATE__URL" in shared:  # the database goes away mid-run: answers still go out
                server = request.getfixturevalue("postgres")
                server.stop()
                try:
                    outage = {**event, "text": f"<@{BOT_USER}> Is there a free trial?", "ts": "1700000600.000300",
                              "event_ts": "1700000600.000300"}
                    assert send(a, event_body(outage, "EvREPLICA3"), JSON)[0] == 200
                    calls = api.wait_for(lambda calls: len([c for c in calls if c.method == "chat.update"
                                                            and c.body.get("blocks")]) >= 3)
                    during = [c.body for c in calls if c.method == "chat.update" and c.body.get("blocks")][2]
                    unrecorded = actions_of(during["blocks"])[kit.UP]
                    assert [c.body["thread_ts"] for c in calls if c.method == "chat.postMessage"][-1] == \
                        "1700000600.000300"  # the answer went out in the asker's thread
                finally:
                    server.start()
                back = {**event, "text": f"<@{BOT_USER}> How do I get a refund?", "ts": "1700000600.000400",
                        "event_ts": "1700000600.000400"}  # the database is back: A records again by itself
                assert send(a, event_body(back, "EvREPLICA4"), JSON)[0] == 200
                calls = api.wait_for(lambda calls: any(c.method == "chat.update" and c.body.get("blocks")
                                                       and "bank account that paid" in c.body.get("text", "") for c in calls))
                after = next(c.body for c in calls if c.method == "chat.update" and c.body.get("blocks")
                             and "bank account that paid" in c.body.get("text", ""))
                recorded_after = actions_of(after["blocks"])[kit.UP]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            outcomes = [process.communicate(timeout=120) for process in processes]
    logs = "\n".join(err[-3000:] for _, err in outcomes)
    assert [p["thread_ts"] for p in placeholders] == ["1700000600.000100"], logs  # one placeholder, one answer
    assert [p["thread_ts"] for p in answered] == ["1700000600.000100"] * 2, logs  # the follow-up answered too
    assert [process.returncode for process in processes] == [0, 0], logs
    if "SUPPORTBOT_STATE__URL" in shared:  # the outage cost A one log line, and nothing committed
        reported = [line for line in outcomes[0][1].splitlines() if "cannot be used" in line]
        assert len(reported) == 1 and "delivery slack:EvREPLICA3 not checked for duplicates: the shared state " \
            "database" in reported[0], logs
        assert len([line for line in outcomes[0][1].splitlines() if line.endswith(" answers again")]) == 1, logs
    store = FeedbackStore(PostgresStateDatabase(shared["SUPPORTBOT_STATE__URL"]) if "SUPPORTBOT_STATE__URL" in shared
                          else Path(shared["SUPPORTBOT_FEEDBACK_DB"]))
    if "SUPPORTBOT_STATE__URL" in shared:
        assert store.counts() == {"answers": 3, "thumbs_up": 1, "thumbs_down": 0}, logs  # B's 👍 on A's answer, stored once
        with pytest.raises(UnknownAnswer):
            store.get(unrecorded)  # given while the database was away: not stored, and nothing else lost
        assert store.get(recorded_after).question == "How do I get a refund?"  # recorded again once it was back
    else:
        assert store.counts() == {"answers": 2, "thumbs_up": 1, "thumbs_down": 0}  # B's 👍 on A's answer, stored once
    store.close()
