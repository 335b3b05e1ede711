"""`supportbot serve`: the chat platforms and (unless another process runs it) the nightly
re-index, in one process. It alone imports the platform adapters, and only when their
platform is switched on; each is handed the app's chat flow."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from bot.app.application import App

log = logging.getLogger(__name__)

PLATFORMS = ("slack", "discord")


class ServeError(RuntimeError):
    """A setup problem the operator must fix (missing token, unknown platform)."""


def chosen_platforms(app: App) -> list[str]:
    cfg, settings = app.settings.serve, app.settings
    platforms = list(cfg.platforms) or [p for p, token in (("slack", settings.slack_bot_token),
                                                            ("discord", settings.discord_token)) if token]
    unknown = [p for p in platforms if p not in PLATFORMS]
    if unknown:
        raise ServeError(f"unknown platform(s) {unknown}; supportbot serves {', '.join(PLATFORMS)}")
    if not platforms:
        raise ServeError("no chat platform to serve: set SLACK_BOT_TOKEN and/or DISCORD_TOKEN (see README), "
                         "or use `supportbot chat` for the console")
    return platforms


def check_setup(app: App) -> list[str]:
    """Every platform's tokens and settings, before anything slow starts; returns the platforms."""
    platforms = chosen_platforms(app)
    if "slack" in platforms:
        _slack_secrets(app)
    if "discord" in platforms and not app.settings.discord_token:
        raise ServeError("Discord needs DISCORD_TOKEN in the environment")
    return platforms


def _slack_secrets(app: App) -> str | None:
    s, cfg = app.settings, app.settings.slack
    if not s.slack_bot_token:
        raise ServeError("Slack needs SLACK_BOT_TOKEN in the environment")
    secret = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else None
    if cfg.mode == "http" and not secret:
        raise ServeError("Slack HTTP mode needs SLACK_SIGNING_SECRET in the environment")
    if cfg.mode == "socket" and not s.slack_app_token:
        raise ServeError("Slack Socket Mode needs SLACK_APP_TOKEN (xapp-...) in the environment; "
                         "or set slack.mode = \"http\"")
    return secret


def slack_bot(app: App):
    """The Slack adapter wired to this app's chat flow."""
    from adapters.slack.bot import SlackBot, SlackSettings

    s, cfg = app.settings, app.settings.slack
    secret = _slack_secrets(app)
    return SlackBot(app.chat, SlackSettings(
        bot_token=s.slack_bot_token.get_secret_value(), signing_secret=secret if cfg.mode == "http" else None,
        api_base_url=cfg.api_base_url, admin_group=cfg.admin_group, human_group=cfg.human_group,
        edit_interval_s=cfg.edit_interval_s, native_streaming=cfg.native_streaming))


def discord_bot(app: App):
    """The Discord adapter wired to this app's chat flow (build it inside the running event loop)."""
    from adapters.discord.bot import DiscordSettings, make_bot

    cfg = app.settings.discord
    return make_bot(app.chat, DiscordSettings(
        guild_ids=tuple(cfg.guild_ids), admin_role_ids=frozenset(cfg.admin_role_ids), human_role_id=cfg.human_role_id,
        edit_interval_s=cfg.edit_interval_s, direct_messages=cfg.direct_messages), sharded=cfg.sharded,
        shard_count=cfg.shard_count)


def run_serve(app: App) -> None:
    platforms = check_setup(app)
    nightly = None
    if app.settings.reindex.in_serve and (app.settings.reindex.schedule or app.settings.insights.digest_schedule):
        nightly = app.schedule()
    try:
        asyncio.run(_serve(app, platforms, nightly))
    finally:
        if nightly is not None:
            nightly.shutdown(wait=False)
        app.work_queue.shutdown()


def ops_endpoints(app: App):
    from bot.http_endpoints import ops_app

    return ops_app(app.health, app.metrics.exposition)


async def serve_ops(app: App, host: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(ops_endpoints(app), host=host, port=port, lifespan="off", log_level="warning",
                            access_log=False)
    log.info("health and metrics on http://%s:%d/healthz and /metrics", host, port)
    await uvicorn.Server(config).serve()


async def _serve(app: App, platforms: list[str], nightly) -> None:
    """/healthz first (it says "starting"), then the models and the index are loaded, then
    the platforms connect. SIGTERM or Ctrl-C drains: new questions are told to ask again,
    answers in flight get `serve.drain_seconds` to finish, then everything stops."""
    from adapters.slack.server import quiet_server

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    servers: list[Any] = []  # uvicorn servers, stopped by should_exit
    closers: list[Callable[[], Coroutine[Any, Any, None]]] = []
    tasks: list[asyncio.Task] = []
    serve_cfg = app.settings.serve
    app.ready = False
    if serve_cfg.health_port:
        ops = quiet_server(ops_endpoints(app), serve_cfg.health_host, serve_cfg.health_port)
        servers.append(ops)
        tasks.append(asyncio.create_task(ops.serve()))
        log.info("health and metrics on http://%s:%d/healthz and /metrics", serve_cfg.health_host,
                 serve_cfg.health_port)
    warm = asyncio.create_task(asyncio.to_thread(app.warm_up))
    await asyncio.wait({warm, asyncio.create_task(stopping.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if stopping.is_set():
        log.warning("stopped while starting")
        await _stop(servers, closers, tasks)
        return
    warm.result()
    app.ready = True
    if "slack" in platforms:
        from adapters.slack.server import http_server

        bot = slack_bot(app)
        app.notifier.register("slack", _poster(bot, loop))
        cfg = app.settings.slack
        if cfg.mode == "http":
            server, sockets = http_server(bot, cfg.host, cfg.port, cfg.path, others=ops_endpoints(app),
                                          max_body_bytes=cfg.max_request_kb * 1024)
            servers.append(server)
            tasks.append(asyncio.create_task(server.serve(sockets=sockets)))
            log.info("Slack HTTP mode on http://%s:%d%s", cfg.host, cfg.port, cfg.path)
        else:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(bot.app, app.settings.slack_app_token.get_secret_value())
            closers.append(handler.close_async)
            tasks.append(asyncio.create_task(handler.start_async()))
            log.info("Slack Socket Mode: connecting")
    if "discord" in platforms:
        discord = discord_bot(app)
        app.notifier.register("discord", _poster(discord, loop), _file_poster(discord, loop))
        closers.append(discord.close)
        tasks.append(asyncio.create_task(discord.start(app.settings.discord_token.get_secret_value())))
    if nightly is not None:
        log.info("scheduled: next re-index %s, next digest %s", nightly.start(), nightly.next_digest())
    stop = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
    if stop in done:
        await _drain(app, serve_cfg.drain_seconds)
    await _stop(servers, closers, [t for t in tasks if t not in done])
    for task in done:
        if task is not stop:
            task.result()  # a part that stopped by itself (a rejected token, a port in use) says why


async def _drain(app: App, grace_s: float) -> None:
    chat = app.chat
    chat.stop_taking_questions()
    if chat.in_flight:
        log.warning("stopping: new questions are told to ask again; waiting up to %.0fs for %d answer(s)",
                    grace_s, chat.in_flight)
    if not await chat.drained(grace_s):
        log.warning("stopping: %d answer(s) not finished; their askers are told to ask again", chat.in_flight)
        chat.abandon()
        await chat.drained(10)  # the replies saying so go out


async def _stop(servers: list[Any], closers: list[Callable[[], Coroutine[Any, Any, None]]],
                tasks: list[asyncio.Task]) -> None:
    for server in servers:
        server.should_exit = True
    for close in closers:
        try:
            await close()
        except Exception as err:
            log.warning("while stopping: %s", err)
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=15)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _poster(bot: Any, loop: asyncio.AbstractEventLoop) -> Callable[[str, str], None]:
    """A platform's `post_notice` for the scheduler thread: runs on the bot's loop, waits for it."""
    def post(channel: str, text: str) -> None:
        asyncio.run_coroutine_threadsafe(bot.post_notice(channel, text), loop).result(timeout=60)

    return post


def _file_poster(bot: Any, loop: asyncio.AbstractEventLoop) -> Callable[[str, str, str, bytes], None]:
    """A platform's `post_notice` with a file attached (the digest's chart)."""
    def post(channel: str, text: str, name: str, data: bytes) -> None:
        asyncio.run_coroutine_threadsafe(bot.post_notice(channel, text, file=(name, data)), loop).result(timeout=60)

    return post


def run_scheduler(app: App, announce: Callable[[str], None] = log.info) -> None:
    """`supportbot scheduler`: the nightly re-index alone (one per deployment), with
    /healthz and /metrics (re-index runs are counted here) when serve.health_port is set.
    Stops on Ctrl-C or SIGTERM; a re-index in progress finishes first."""
    nightly = app.schedule()
    _exit_on_sigterm()
    announce(f"Scheduler running ({app.settings.reindex.schedule!r}); next re-index {nightly.start()}, "
             f"next digest {nightly.next_digest()}.")
    try:
        asyncio.run(_wait_for_stop(app))
    except KeyboardInterrupt:
        pass
    finally:
        announce("Stopping the scheduler (a re-index in progress finishes first).")
        nightly.shutdown(wait=True)


async def _wait_for_stop(app: App) -> None:
    port = app.settings.serve.health_port
    if port:
        await serve_ops(app, app.settings.serve.health_host, port)  # returns on SIGTERM / Ctrl-C
    await asyncio.Event().wait()  # until SIGTERM (SystemExit) or Ctrl-C


def _exit_on_sigterm() -> None:
    """SIGTERM (docker stop, systemctl stop) unwinds like Ctrl-C, so shutdown code runs.
    uvicorn restores this handler and re-raises the signal after its own graceful stop."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
