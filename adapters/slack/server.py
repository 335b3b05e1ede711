"""Running the Slack bot: HTTP mode (Events API, interactivity and commands on one path,
served by uvicorn) for production behind a load balancer, or Socket Mode for one box."""

from __future__ import annotations

import logging
import socket

import uvicorn
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler

from adapters.slack.bot import SlackBot

log = logging.getLogger(__name__)


def asgi_app(bot: SlackBot, path: str = "/slack/events"):
    """Bolt's ASGI handler on `path`; `/healthz` answers 200 for load balancers."""
    bolt = AsyncSlackRequestHandler(bot.app, path=path)

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"ok\n"})
            return
        await bolt(scope, receive, send)

    return app


def http_server(bot: SlackBot, host: str, port: int, path: str = "/slack/events",
                sock: socket.socket | None = None) -> tuple[uvicorn.Server, list[socket.socket] | None]:
    """A uvicorn server for the bot; pass a bound `sock` to serve on it (port 0 in tests)."""
    config = uvicorn.Config(asgi_app(bot, path), host=host, port=port, lifespan="off", log_level="warning",
                            access_log=False)
    return uvicorn.Server(config), [sock] if sock is not None else None


async def serve_http(bot: SlackBot, host: str, port: int, path: str = "/slack/events") -> None:
    server, sockets = http_server(bot, host, port, path)
    log.info("Slack HTTP mode on http://%s:%d%s", host, port, path)
    await server.serve(sockets=sockets)


async def serve_socket_mode(bot: SlackBot, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    log.info("Slack Socket Mode: connecting")
    await AsyncSocketModeHandler(bot.app, app_token).start_async()
