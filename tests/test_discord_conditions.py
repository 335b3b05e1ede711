"""Discord under real conditions, through discord.py's own gateway parsers, command tree and
payload builders: a message replayed by a gateway resume, an interaction whose token ran out
before its answer, direct messages, and mass mentions."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.discord.bot import DiscordSettings, SupportBot
from bot.chat_flow import ChatFlow
from bot.work_queue import WorkQueue
from tests.discord_fakes import (
    ADMIN_ROLE,
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    Recorder,
    feed,
    install,
    message,
    slash,
    snowflake,
    start_offline,
    user,
)
from tests.test_discord import ask_options, button_ids


async def online(core, recorder: Recorder, **settings: Any) -> tuple[SupportBot, Any]:
    bot = SupportBot(ChatFlow(core.commands, core.feedback, WorkQueue()),
                     DiscordSettings(guild_ids=(GUILD_ID,), admin_role_ids=frozenset({ADMIN_ROLE}), **settings))
    webhooks = install(bot, recorder)
    await start_offline(bot)
    return bot, webhooks


def answered(sent) -> list:
    return [s for s in sent if s.payload.get("components")]


def test_a_message_replayed_after_a_gateway_resume_is_answered_once(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot, _ = await online(core, recorder)
        mention = message(f"<@{BOT_ID}> How much does the Team plan cost?", CHANNEL_ID, user(930000000000000001, "a"),
                          guild_id=str(GUILD_ID), mentions=[user(BOT_ID, "supportbot", bot=True)])
        feed(bot, "MESSAGE_CREATE", mention)
        feed(bot, "MESSAGE_CREATE", dict(mention))  # the same message id, replayed
        sent = await recorder.wait_for(lambda s: answered(s))
        await asyncio.sleep(1.5)
        assert len([s for s in recorder.sent if s.url.endswith("/threads")]) == 1 and len(answered(recorder.sent)) == 1
        assert answered(sent)[0].payload["allowed_mentions"] == {"parse": ["users"]}  # never @everyone, @here, roles
        await bot.close()

    asyncio.run(scenario())


def test_an_answer_outliving_its_interaction_token_is_posted_to_the_channel(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot, webhooks = await online(core, recorder)
        feed(bot, "INTERACTION_CREATE", slash("ask", ask_options("How do I turn on two-factor authentication?")))
        await recorder.wait_for(lambda s: any(x.url.endswith("/callback") for x in s))
        webhooks.expired = True  # e.g. 15 minutes waiting in the queue
        sent = await recorder.wait_for(lambda s: any(x.method == "POST" and f"/channels/{CHANNEL_ID}/messages" in x.url
                                                     for x in s))
        posted = next(x for x in sent if x.method == "POST" and f"/channels/{CHANNEL_ID}/messages" in x.url).payload
        assert posted["content"].startswith("<@930000000000000001> ")
        assert any(i.startswith("sb:up:") for i in button_ids(posted)) and posted["embeds"]
        assert any(x.method.endswith("(401)") for x in sent)
        await bot.close()

    asyncio.run(scenario())


def direct_message(text: str) -> dict:
    return message(text, snowflake(), user(930000000000000001, "alice"))  # no guild: a DM channel


def test_direct_messages_are_answered_only_when_switched_on(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        off, _ = await online(core, recorder)
        feed(off, "MESSAGE_CREATE", direct_message("How much does the Team plan cost?"))
        await asyncio.sleep(1)
        assert recorder.sent == [] or all("/messages" not in s.url for s in recorder.sent)
        await off.close()

        recorder = Recorder()
        on, _ = await online(core, recorder, direct_messages=True)
        dm = direct_message("How much does the Team plan cost?")
        feed(on, "MESSAGE_CREATE", dm)
        sent = await recorder.wait_for(lambda s: answered(s))
        assert f"/channels/{dm['channel_id']}/messages" in answered(sent)[0].url
        assert not any(s.url.endswith("/threads") for s in sent)  # a DM is answered in place
        await on.close()

    asyncio.run(scenario())
