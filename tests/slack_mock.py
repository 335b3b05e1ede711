"""The network edge for Slack tests: a local Slack Web API on 127.0.0.1 that records every
call with its body and answers like Slack, and correctly signed requests to the bot.

(The pattern of bolt-python's tests/mock_web_api_server, written for this project.)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from bot.chat_flow import PLACE_END

if TYPE_CHECKING:
    from bot.app.application import App
    from bot.work_queue import WorkQueue

BOT_USER = "UBOT"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-1111-2222-testtokenabcdef"


@dataclass
class Call:
    method: str  # Web API method ("chat.postMessage") or "response_url"
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class _SlackServer(ThreadingHTTPServer):
    """Slack's API takes every connection at once. The standard library's default backlog
    (5) drops connections beyond it in a burst, and each dropped one is retried by the
    client's TCP stack a second later: 1.0 s added to some answers of a 30-mention burst."""

    daemon_threads = True
    request_queue_size = 128


class MockSlackAPI:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.condition = threading.Condition()
        self.rate_limited: dict[str, int] = {}  # method -> how many 429s to answer first
        self.failing: dict[str, int] = {}  # method -> how many HTTP 500s to answer first
        self.streaming = False  # True: the workspace offers chat.startStream / appendStream / stopStream
        self._streams: dict[str, str] = {}  # ts -> "streaming" | "stopped"
        self.group_members: list[str] = []
        self._holds: list[tuple[Callable[[str, dict], bool], threading.Event]] = []
        self._ts = itertools.count(1)
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                if self.path.startswith("/upload/"):  # a file's bytes, to the URL files.getUploadURLExternal gave
                    mock._record("upload", {"path": self.path, "data": data})
                    mock._send(self, 200, f"OK - {len(data)}", "text/plain")
                    return
                mock._handle(self, self.path, data.decode("utf-8"), self.headers.get("Content-Type", ""))

            do_GET = do_POST

        self.server = _SlackServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ----- lifecycle ------------------------------------------------------------------
    def __enter__(self) -> MockSlackAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/response/{name}"

    # ----- what the bot did -----------------------------------------------------------
    def of(self, method: str) -> list[Call]:
        with self.condition:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate, timeout: float = 120.0) -> list[Call]:
        """Block until predicate(calls) is true (woken by each new call, never polling)."""
        with self.condition:
            if not self.condition.wait_for(lambda: predicate(self.calls), timeout=timeout):
                raise AssertionError(f"timed out; calls so far: {[(c.method, c.body) for c in self.calls]}")
            return list(self.calls)

    # ----- serving --------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, path: str, raw: str, content_type: str) -> None:
        parsed = urllib.parse.urlparse(path)
        if parsed.path.startswith("/response/"):
            self._record("response_url", json.loads(raw) if raw else {}, path=parsed.path)
            self._send(handler, 200, "ok", "text/plain")
            return
        method = parsed.path.rsplit("/", 1)[-1]
        if "json" in content_type:
            body = json.loads(raw) if raw else {}
        else:
            body = {k: v[0] for k, v in urllib.parse.parse_qs(raw or parsed.query).items()}
            for key in ("blocks", "view"):
                if isinstance(body.get(key), str):
                    body[key] = json.loads(body[key])
        with self.condition:
            if self.failing.get(method, 0) > 0:
                self.failing[method] -= 1
                self.calls.append(Call(method + " (500)", body))
                self.condition.notify_all()
                self._send(handler, 500, "Internal Server Error", "text/plain")
                return
            if self.rate_limited.get(method, 0) > 0:
                self.rate_limited[method] -= 1
                self.calls.append(Call(method + " (429)", body))
                self.condition.notify_all()
                self._send(handler, 429, json.dumps({"ok": False, "error": "ratelimited"}), headers={"Retry-After": "0"})
                return
        self._record(method, body)
        for matches, released in list(self._holds):
            if matches(method, body):
                released.wait(timeout=120)  # the bot's call stays in flight until the test releases it
        self._send(handler, 200, json.dumps(self._reply(method, body)))

    def hold(self, matches: Callable[[str, dict], bool]) -> threading.Event:
        """Keep the answer to each matching call (recorded at once) until the returned event
        is set: a slow Slack, so a test can act while the bot waits on it."""
        released = threading.Event()
        self._holds.append((matches, released))
        return released

    def _record(self, method: str, body: dict, **extra: Any) -> None:
        with self.condition:
            self.calls.append(Call(method, {**body, **extra}))
            self.condition.notify_all()

    def _reply(self, method: str, body: dict) -> dict:
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.com/", "team": "Test", "user": "supportbot",
                    "team_id": "T0001", "user_id": BOT_USER, "bot_id": "BBOT"}
        if method == "chat.postMessage":
            ts = f"1800000000.{next(self._ts):06d}"
            return {"ok": True, "channel": body.get("channel"), "ts": ts, "message": {"text": body.get("text"), "ts": ts}}
        if method == "chat.update":
            return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}
        if method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            return self._stream_reply(method, body)
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.group_members}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V0001"}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):04d}"
            return {"ok": True, "file_id": file_id, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}"}
        if method == "files.completeUploadExternal":
            return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in json.loads(body["files"])]}
        return {"ok": True}

    def _stream_reply(self, method: str, body: dict) -> dict:
        """As Slack documents them: startStream needs channel and thread_ts and returns the
        message ts; appendStream needs markdown_text and a ts still streaming; stopStream
        ends it and returns the message."""
        if not self.streaming:
            return {"ok": False, "error": "unknown_method"}
        channel, ts = body.get("channel"), body.get("ts")
        if method == "chat.startStream":
            if not channel or not body.get("thread_ts"):
                return {"ok": False, "error": "invalid_arguments"}
            ts = f"1800000000.{next(self._ts):06d}"
            self._streams[ts] = "streaming"
            return {"ok": True, "channel": channel, "ts": ts}
        if self._streams.get(ts) != "streaming":
            return {"ok": False, "error": "message_not_in_streaming_state"}
        if method == "chat.appendStream":
            if not body.get("markdown_text"):
                return {"ok": False, "error": "invalid_arguments"}
            return {"ok": True, "channel": channel, "ts": ts}
        self._streams[ts] = "stopped"
        return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts, "blocks": body.get("blocks", [])}}

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: str, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)


# ----- signed requests to the bot -----------------------------------------------------------

def signature(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def send(url: str, body: str | bytes, content_type: str, timestamp: int | None = None,
         secret: str = SIGNING_SECRET, forged: bool = False, headers: dict[str, str] | None = None,
         signed: bool = True) -> tuple[int, str, float]:
    """POST like Slack does; returns (status, body, seconds until the response)."""
    ts = int(time.time()) if timestamp is None else timestamp
    data = body.encode() if isinstance(body, str) else body
    sig = signature(data.decode("utf-8", "replace"), ts, secret)
    if forged:
        sig = sig[:-4] + ("0000" if not sig.endswith("0000") else "1111")
    sent = {"Content-Type": content_type, **(headers or {})}
    if signed:
        sent.update({"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig})
    request = urllib.request.Request(url, data=data, method="POST", headers=sent)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), time.monotonic() - started


def event_body(event: dict[str, Any], event_id: str) -> str:
    return json.dumps({"token": "legacy", "team_id": "T0001", "api_app_id": "A0001", "type": "event_callback",
                       "event_id": event_id, "event_time": int(time.time()), "authorizations": [
                           {"team_id": "T0001", "user_id": BOT_USER, "is_bot": True}], "event": event})


def command_body(command: str, text: str, user: str, response_url: str, channel: str = "C0001") -> str:
    return urllib.parse.urlencode({
        "token": "legacy", "team_id": "T0001", "team_domain": "test", "channel_id": channel, "channel_name": "general",
        "user_id": user, "user_name": user.lower(), "command": command, "text": text, "api_app_id": "A0001",
        "response_url": response_url, "trigger_id": "13345224609.738474920.8088930838d88f008e0",
    })


def action_body(action_id: str, value: str, user: str, response_url: str, channel: str = "C0001",
                message_ts: str = "1800000000.000002", thread_ts: str | None = None) -> str:
    message = {"type": "message", "ts": message_ts, "text": "answer"}
    if thread_ts:
        message["thread_ts"] = thread_ts
    payload = {
        "type": "block_actions", "team": {"id": "T0001"}, "user": {"id": user}, "api_app_id": "A0001",
        "token": "legacy", "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0", "channel": {"id": channel},
        "message": message, "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": f"feedback:{value}", "value": value,
                     "action_ts": str(time.time())}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def view_submission_body(view: dict[str, Any], user: str, values: dict[str, Any]) -> str:
    payload = {"type": "view_submission", "team": {"id": "T0001"}, "user": {"id": user}, "api_app_id": "A0001",
               "token": "legacy", "trigger_id": "1.2.3", "view": {**view, "id": "V0001", "state": {"values": values}}}
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class ServedBot:
    """The Slack app in HTTP mode on a real uvicorn server on 127.0.0.1, on its own thread."""

    def __init__(self, bot, others: Any = None) -> None:
        from adapters.slack.server import http_server

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)  # requests wait in the backlog until uvicorn accepts them
        self.server, sockets = http_server(bot, "127.0.0.1", 0, sock=self.sock, others=others)
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.url = f"{self.base}/slack/events"
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=sockets)), daemon=True)

    def __enter__(self) -> ServedBot:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


class SlackWorld:
    """One test's world: the mock Web API, the bot served over HTTP, helpers to talk to it."""

    def __init__(self, core: App, queue: WorkQueue, commands: Any = None, **settings) -> None:
        self.core = core
        self.commands = commands or core.commands  # a registry over other answers, for delivery tests
        self.api = MockSlackAPI()
        self.queue = queue
        self.settings = settings

    def __enter__(self) -> SlackWorld:
        from adapters.slack.bot import SlackBot, SlackSettings
        from bot.chat_flow import ChatFlow

        self.api.__enter__()
        self.bot = SlackBot(ChatFlow(self.commands, self.core.feedback, self.queue), SlackSettings(
            bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
            api_base_url=self.api.base_url, **self.settings))
        from bot.app.serving import ops_endpoints

        self.served = ServedBot(self.bot, others=ops_endpoints(self.core)).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.served.__exit__(*exc)
        self.api.__exit__(*exc)

    def event(self, event: dict, event_id: str | None = None, retry: int | None = None) -> tuple[int, str, float]:
        """Deliver an event; Slack's event ids are unique across the workspace's whole history,
        and a re-delivery repeats one with X-Slack-Retry-Num (`retry`)."""
        return send(self.served.url, event_body(event, event_id or f"Ev{uuid.uuid4().hex[:12].upper()}"), JSON,
                    headers={"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
                    if retry else None)

    def mention(self, text: str, ts: str, channel: str = "C0001", user: str = "UALICE") -> tuple[int, str, float]:
        return self.event({"type": "app_mention", "user": user, "text": f"<@{BOT_USER}> {text}", "ts": ts,
                           "channel": channel, "event_ts": ts})

    def command(self, command: str, text: str, user: str, name: str) -> tuple[int, str, float]:
        return send(self.served.url, command_body(command, text, user, self.api.response_url(name)), FORM)

    def finals(self, channel: str | None = None) -> list:
        """chat.update calls that ended an answer (not streaming edits, not a place in line)."""
        return [c for c in self.api.of("chat.update") if not c.body.get("text", "").endswith((" …", PLACE_END))
                and (channel is None or c.body["channel"] == channel)]
