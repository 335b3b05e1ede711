"""The network edge for Discord tests (see shared notes/discord-testing.md): interaction and
gateway payloads as Discord sends them, and recorders in place of Discord's HTTP API that
answer like Discord, so the real discord.py command tree, views and payload builders run."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass
from typing import Any

import discord
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

APP_ID = 910000000000000001
BOT_ID = 910000000000000002
GUILD_ID = 910000000000000003
CHANNEL_ID = 910000000000000004
ADMIN_ROLE = 910000000000000005
EVERYONE = GUILD_ID
_ids = itertools.count(920000000000000001)


def snowflake() -> int:
    return next(_ids)


def user(user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "avatar": None, "global_name": name,
            "bot": bot}


def member(user_id: int, name: str, roles: tuple[int, ...] = ()) -> dict[str, Any]:
    return {"user": user(user_id, name), "roles": [str(r) for r in roles], "flags": 0, "deaf": False, "mute": False,
            "joined_at": "2026-01-01T00:00:00+00:00", "permissions": "0"}


def text_channel() -> dict[str, Any]:
    return {"id": str(CHANNEL_ID), "type": 0, "name": "support", "position": 0, "guild_id": str(GUILD_ID),
            "permission_overwrites": [], "nsfw": False, "parent_id": None}


def guild() -> dict[str, Any]:
    role = {"id": str(EVERYONE), "name": "@everyone", "permissions": "0", "position": 0, "color": 0,
            "hoist": False, "managed": False, "mentionable": False, "flags": 0}
    admin = {**role, "id": str(ADMIN_ROLE), "name": "Support admins", "position": 1}
    return {"id": str(GUILD_ID), "name": "Driftwood", "channels": [text_channel()], "roles": [role, admin],
            "members": [], "threads": [], "member_count": 3, "owner_id": "1", "features": [], "emojis": [],
            "stickers": [], "unavailable": False, "large": False, "premium_tier": 0, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0,
            "preferred_locale": "en-US", "system_channel_flags": 0, "afk_timeout": 300, "icon": None,
            "splash": None, "banner": None, "description": None, "voice_states": [], "presences": [],
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": []}


def message(content: str, channel_id: int, author: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": str(snowflake()), "channel_id": str(channel_id), "author": author, "content": content,
            "timestamp": "2026-11-21T08:00:00+00:00", "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
            "components": [], "pinned": False, "type": 0, "flags": 0, **extra}


def _base_interaction(kind: int, user_id: int, name: str, roles: tuple[int, ...], data: dict) -> dict[str, Any]:
    return {"id": str(snowflake()), "application_id": str(APP_ID), "type": kind, "token": f"itoken-{snowflake()}",
            "version": 1, "attachment_size_limit": 8_388_608, "guild_id": str(GUILD_ID),
            "channel_id": str(CHANNEL_ID), "channel": text_channel(), "member": member(user_id, name, roles),
            "app_permissions": "2248473465835073", "locale": "en-US", "guild_locale": "en-US",
            "entitlements": [], "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 0, "data": data}


def slash(command: str, options: list[dict] | None = None, user_id: int = 930000000000000001, name: str = "alice",
          roles: tuple[int, ...] = (), sub: str | None = None) -> dict[str, Any]:
    opts = options or []
    if sub is not None:
        opts = [{"type": 1, "name": sub, "options": opts}]
    data = {"id": str(snowflake()), "name": command, "type": 1, "options": opts, "guild_id": str(GUILD_ID)}
    return _base_interaction(2, user_id, name, roles, data)


def button(custom_id: str, user_id: int = 930000000000000001, name: str = "alice",
           roles: tuple[int, ...] = ()) -> dict[str, Any]:
    """A press on one of the answer's buttons; the message carries its buttons, as Discord sends it."""
    payload = _base_interaction(3, user_id, name, roles, {"custom_id": custom_id, "component_type": 2})
    answer_id = custom_id.rsplit(":", 1)[-1]
    row = {"type": 1, "components": [{"type": 2, "style": 2, "label": kind, "custom_id": f"sb:{kind}:{answer_id}"}
                                     for kind in ("up", "down", "human")]}
    payload["message"] = message("an answer", CHANNEL_ID, user(BOT_ID, "supportbot", bot=True), components=[row])
    return payload


@dataclass
class Sent:
    method: str
    url: str
    payload: dict[str, Any]


class Recorder:
    """Everything the bot sent to Discord, in order; tests wait on it (no polling, no sleeps)."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.condition = asyncio.Condition()

    async def record(self, method: str, url: str, payload: dict[str, Any] | None) -> None:
        async with self.condition:
            self.sent.append(Sent(method, url, payload or {}))
            self.condition.notify_all()

    async def wait_for(self, predicate, timeout: float = 120.0) -> list[Sent]:
        async with self.condition:
            try:
                await asyncio.wait_for(self.condition.wait_for(lambda: predicate(self.sent)), timeout)
            except TimeoutError:
                raise AssertionError(f"timed out; sent so far: {[(s.method, s.url) for s in self.sent]}") from None
            return list(self.sent)


class RecordingWebhookAdapter(AsyncWebhookAdapter):
    """Interaction responses and followups: recorded, answered like Discord."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder
        self.expired = False  # True: the interaction token ran out (15 minutes); its webhook answers 401

    async def request(self, route, session, *, payload=None, multipart=None, proxy=None, proxy_auth=None,
                      files=None, reason=None, auth_token=None, params=None) -> Any:
        if multipart and payload is None:
            import json

            payload = json.loads(next(p["value"] for p in multipart if p["name"] == "payload_json"))
        if self.expired and not route.url.endswith("/callback"):
            await self.recorder.record(route.method + " (401)", route.url, payload)
            raise discord.HTTPException(_Unauthorized(), {"code": 50027, "message": "Invalid Webhook Token"})
        await self.recorder.record(route.method, route.url, payload)
        if route.url.endswith("/callback"):
            interaction_id = route.url.split("/interactions/")[1].split("/")[0]
            return {"interaction": {"id": interaction_id, "type": 2, "response_message_id": None,
                                    "response_message_loading": True, "response_message_ephemeral": False},
                    "resource": {"type": (payload or {}).get("type", 5)}}
        bot = user(BOT_ID, "supportbot", bot=True)
        body = payload or {}
        return message(body.get("content") or "", CHANNEL_ID, bot, embeds=body.get("embeds", []),
                       components=body.get("components", []), flags=body.get("flags", 0),
                       webhook_id=str(APP_ID), application_id=str(APP_ID))


class _Unauthorized:
    status = 401
    reason = "Unauthorized"


class FakeDiscordHTTP:
    """Stands in for HTTPClient.request: channel messages, threads, command sync."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def request(self, route, *, files=None, form=None, **kwargs: Any) -> Any:
        payload = kwargs.get("json")
        if form:  # a message with files: its JSON part, and each file's name and bytes
            payload = {**json.loads(next(part["value"] for part in form if part["name"] == "payload_json")),
                       "files": [(f.filename, f.fp.getvalue()) for f in files or []]}
        await self.recorder.record(route.method, route.url, payload if isinstance(payload, dict) else
                                   {"list": payload} if payload is not None else None)
        path = route.url.split("/api/v10", 1)[-1]
        bot = user(BOT_ID, "supportbot", bot=True)
        if path.endswith("/threads"):
            parent = int(path.split("/channels/")[1].split("/")[0])
            return {"id": str(snowflake()), "type": 11, "guild_id": str(GUILD_ID), "parent_id": str(parent),
                    "owner_id": str(BOT_ID), "name": payload.get("name", "thread"), "message_count": 0,
                    "member_count": 1, "rate_limit_per_user": 0, "flags": 0, "last_message_id": None,
                    "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                        "archive_timestamp": "2026-11-21T08:00:00+00:00"}}
        if "/commands" in path:
            return [{**c, "id": str(snowflake()), "application_id": str(APP_ID), "version": "1",
                     "default_member_permissions": c.get("default_member_permissions")} for c in payload]
        if route.method in ("POST", "PATCH") and "/messages" in path:
            channel = int(path.split("/channels/")[1].split("/")[0])
            body = payload or {}
            return message(body.get("content") or "", channel, bot, embeds=body.get("embeds", []),
                           components=body.get("components", []))
        return {}


def install(bot: discord.Client, recorder: Recorder) -> RecordingWebhookAdapter:
    """Point the bot's HTTP and webhook traffic at the recorder (set before feeding events:
    tasks copy the context when they are created)."""
    webhooks = RecordingWebhookAdapter(recorder)
    async_context.set(webhooks)
    bot.http.request = FakeDiscordHTTP(recorder).request  # type: ignore[method-assign]
    return webhooks


async def start_offline(bot: Any) -> None:
    """What login + connect would do, without the network (see the shared notes)."""
    await bot._async_setup_hook()
    bot._connection.user = discord.ClientUser(state=bot._connection, data=user(BOT_ID, "supportbot", bot=True))
    bot._connection.application_id = APP_ID
    await bot.setup_hook()
    bot._connection.parsers["GUILD_CREATE"](guild())


def feed(bot: Any, event: str, payload: dict[str, Any]) -> None:
    """The same entry the gateway websocket uses."""
    bot._connection.parsers[event](payload)
