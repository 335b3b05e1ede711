"""Running the Slack bot: HTTP mode (Events API, interactivity and commands on one path,
served by uvicorn) for production behind a load balancer, or Socket Mode for one box."""

from __future__ import annotations

import logging
import socket
from typing import Any

import uvicorn
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler

from adapters.slack.bot import SlackBot

log = logging.getLogger(__name__)


def asgi_app(bot: SlackBot, path: str = "/slack/events", others: Any = None):
    """Bolt's ASGI handler on `path`; every other path goes to `others` (e.g. /healthz, /metrics)."""
    bolt = AsyncSlackRequestHandler(bot.app, path=path)

    async def app(scope, receive, send):
        if others is not None and scope["type"] == "http" and scope["path"] != path:
            await others(scope, receive, send)
            return
        await bolt(scope, receive, send)

    return app


def http_server(bot: SlackBot, host: str, port: int, path: str = "/slack/events", sock: socket.socket | None = None,
                others: Any = None) -> tuple[uvicorn.Server, list[socket.socket] | None]:
    """A uvicorn server for the bot; pass a bound `sock` to serve on it (port 0 in tests)."""
    config = uvicorn.Config(asgi_app(bot, path, others), host=host, port=port, lifespan="off", log_level="warning",
                            access_log=False)
    return uvicorn.Server(config), [sock] if sock is not None else None


async def serve_http(bot: SlackBot, host: str, port: int, path: str = "/slack/events", others: Any = None) -> None:
    server, sockets = http_server(bot, host, port, path, others=others)
    log.info("Slack HTTP mode on http://%s:%d%s", host, port, path)
    await server.serve(sockets=sockets)


async def serve_socket_mode(bot: SlackBot, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    log.info("Slack Socket Mode: connecting")
    await AsyncSocketModeHandler(bot.app, app_token).start_async()
