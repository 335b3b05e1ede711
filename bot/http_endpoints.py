"""`/healthz` and `/metrics` as a tiny ASGI app, served beside Slack's HTTP endpoint or on
its own port (`serve.health_port`) for Socket Mode and Discord, where nothing else listens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

Health = Callable[[], tuple[bool, dict[str, Any]]]
Exposition = Callable[[], tuple[bytes, str]]
ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def ops_app(health: Health, metrics: Exposition) -> ASGIApp:
    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if path == "/healthz":
            ok, info = await asyncio.to_thread(health)  # may read the index manifest (disk or S3)
            await _respond(send, 200 if ok else 503, json.dumps(info).encode(), "application/json")
        elif path == "/metrics":
            body, content_type = await asyncio.to_thread(metrics)
            await _respond(send, 200, body, content_type)
        else:
            await _respond(send, 404, b"not found\n", "text/plain; charset=utf-8")

    return app


async def _respond(send: Callable, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
