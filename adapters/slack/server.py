"""Running the Slack bot: HTTP mode (Events API, interactivity and commands on one path,
served by uvicorn) for production behind a load balancer, or Socket Mode for one box.

In HTTP mode every request to the Slack path passes a gate before Bolt sees it: a body
over the limit is refused with 413 before it is read whole, a request without a valid
signature with 401 before anything in it is parsed, and a signed body that is not a Slack
payload (malformed JSON, an array, a bad `payload=`) with 400; each with one log line that
never carries the body.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from adapters.slack.bot import SlackBot

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024  # Slack's own payloads are a few KB; a modal's state stays far below this
ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def asgi_app(bot: SlackBot, path: str = "/slack/events", others: Any = None,
             max_body_bytes: int = MAX_BODY_BYTES) -> ASGIApp:
    """Bolt's ASGI handler on `path`, behind the gate; every other path goes to `others`
    (e.g. /healthz, /metrics)."""
    bolt = AsyncSlackRequestHandler(bot.app, path=path)
    secret = bot.settings.signing_secret
    verifier = SignatureVerifier(secret) if secret else None

    async def app(scope, receive, send):
        if scope["type"] != "http" or scope["path"] != path:
            if others is not None and scope["type"] == "http":
                await others(scope, receive, send)
            else:
                await bolt(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        body = await _read_body(receive, headers, max_body_bytes)
        if body is None:
            log.warning("refused a Slack request over %d bytes (413)", max_body_bytes)
            await _status(send, 413, "request too large")
            return
        if verifier is not None and not _signed(verifier, body, headers):
            log.warning("refused a Slack request without a valid signature (401), %d bytes", len(body))
            await _status(send, 401, "invalid signature")
            return
        problem = _not_a_slack_payload(body, headers.get("content-type", ""))
        if problem:
            log.warning("refused a signed Slack request: %s (400)", problem)
            await _status(send, 400, "bad request")
            return
        await bolt(scope, _replay(body, receive), send)

    return app


def _signed(verifier: SignatureVerifier, body: bytes, headers: dict[str, str]) -> bool:
    """A valid signature over this body, made in the last five minutes."""
    timestamp, signature = headers.get("x-slack-request-timestamp", ""), headers.get("x-slack-signature", "")
    return timestamp.isdigit() and bool(signature) and verifier.is_valid(body, timestamp, signature)


async def _read_body(receive: Callable[[], Awaitable[dict]], headers: dict[str, str], limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to be over `limit` (from its declared
    length, before reading; or while reading a chunked one)."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _not_a_slack_payload(body: bytes, content_type: str) -> str | None:
    """Why a signed body is not something Slack sends, or None."""
    try:
        text = body.decode("utf-8")
        if "json" in content_type:
            if not isinstance(json.loads(text), dict):
                return "a JSON body that is not an object"
            return None
        fields = urllib.parse.parse_qs(text, keep_blank_values=True)
        if "payload" in fields and not isinstance(json.loads(fields["payload"][0]), dict):
            return "a payload that is not a JSON object"
    except (UnicodeDecodeError, ValueError):
        return "a malformed body"
    return None


def _replay(body: bytes, receive: Callable[[], Awaitable[dict]]) -> Callable[[], Awaitable[dict]]:
    sent = False

    async def again() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _status(send: Callable[[dict], Awaitable[None]], status: int, text: str) -> None:
    data = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves SIGTERM and SIGINT to the process: `supportbot serve`
    drains its answers first, then stops its servers itself (should_exit)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def quiet_server(app: Any, host: str, port: int) -> QuietServer:
    return QuietServer(uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="warning",
                                      access_log=False))


def http_server(bot: SlackBot, host: str, port: int, path: str = "/slack/events", sock: socket.socket | None = None,
                others: Any = None,
                max_body_bytes: int = MAX_BODY_BYTES) -> tuple[uvicorn.Server, list[socket.socket] | None]:
    """A uvicorn server for the bot; pass a bound `sock` to serve on it (port 0 in tests)."""
    return quiet_server(asgi_app(bot, path, others, max_body_bytes), host, port), [sock] if sock is not None else None
