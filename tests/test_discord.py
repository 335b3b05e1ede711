"""Discord through the real discord.py command tree, dynamic buttons and gateway parsers, fed
with interaction and message payloads; what the bot sends is captured at the HTTP edge. The
core behind it is real (sample docs, bundled embedder and generator)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import discord
import pytest

from adapters.discord.bot import ERROR_TEXT, INVITE_PERMISSIONS, PLACEHOLDER, DiscordSettings, SupportBot, intents
from bot.acl import AccessPolicy
from bot.answering import AnswerService
from bot.commands import build_registry
from bot.chat_flow import ChatFlow
from bot.work_queue import WorkQueue
from bot.app.knowledge_parts import bundled_sample_docs
from tests.conftest import DISCORD_ADMIN
from tests.discord_fakes import (
    ADMIN_ROLE,
    APP_ID,
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    Recorder,
    Sent,
    button,
    feed,
    install,
    message,
    slash,
    start_offline,
    user,
)
from tests.fakes import FixedAnswers, ScriptedGenerator, driftwood_frame


def run(scenario) -> Any:
    return asyncio.run(scenario)


async def online(registry, feedback, recorder: Recorder, **settings) -> SupportBot:
    bot = SupportBot(ChatFlow(registry, feedback, WorkQueue(capacity=settings.pop("capacity", 8))),
                     DiscordSettings(guild_ids=(GUILD_ID,), admin_role_ids=frozenset({ADMIN_ROLE}), **settings))
    install(bot, recorder)
    await start_offline(bot)
    return bot


def is_final_edit(sent: Sent) -> bool:
    """An edit that is not a streamed answer's partial text nor a re-index's progress line
    (which the re-index shows in place, as often as the edit interval allows)."""
    content = sent.payload.get("content", "")
    return sent.method == "PATCH" and sent.url.endswith("/messages/@original") and not content.endswith(" …") \
        and not content.startswith("Re-indexing… ")


def finals(sent: list[Sent]) -> list[Sent]:
    return [s for s in sent if is_final_edit(s)]


def button_ids(payload: dict) -> list[str]:
    return [c["custom_id"] for row in payload.get("components", []) for c in row["components"]]


def ask_options(question: str, private: bool | None = None) -> list[dict]:
    options = [{"type": 3, "name": "question", "value": question}]
    if private is not None:
        options.append({"type": 5, "name": "private", "value": private})
    return options


def test_ask_defers_then_answers_with_a_sources_embed_and_buttons(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(core.commands, core.feedback, recorder)
        feed(bot, "INTERACTION_CREATE", slash("ask", ask_options("How much does the Team plan cost?")))
        sent = await recorder.wait_for(lambda s: finals(s))
        callback = next(s for s in sent if s.url.endswith("/callback"))
        assert callback.payload == {"type": 5}  # deferred at once, visible to the channel
        final = finals(sent)[-1].payload
        assert final["content"]
        embed = final["embeds"][0]
        assert embed["title"] == "Sources" and embed["description"].startswith("**[1]** Plans and pricing")
        ids = button_ids(final)
        assert [i.split(":")[1] for i in ids] == ["up", "down", "human"]
        answer_id = ids[0].split(":")[2]
        assert core.feedback.get(answer_id).user_id == core.feedback.stored_user_id("discord:930000000000000001")
        await bot.close()

    run(scenario())


def test_private_ask_is_ephemeral(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(core.commands, core.feedback, recorder)
        feed(bot, "INTERACTION_CREATE", slash("ask", ask_options("How do I get a refund?", private=True)))
        sent = await recorder.wait_for(lambda s: finals(s))
        callback = next(s for s in sent if s.url.endswith("/callback"))
        assert callback.payload == {"type": 5, "data": {"flags": 64}}
        assert "refunds" in finals(sent)[-1].payload["embeds"][0]["description"]
        await bot.close()

    run(scenario())


def test_admin_commands_are_refused_to_others_and_run_for_admins(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(core.commands, core.feedback, recorder)
        runs = len(core.index_ops.history.runs())
        feed(bot, "INTERACTION_CREATE", slash("supportbot", sub="reindex", user_id=930000000000000077, name="guest"))
        sent = await recorder.wait_for(lambda s: finals(s))
        assert finals(sent)[-1].payload["content"] == "Sorry, /reindex is for admins only."
        assert next(s for s in sent if s.url.endswith("/callback")).payload == {"type": 5, "data": {"flags": 64}}
        assert len(core.index_ops.history.runs()) == runs

        feed(bot, "INTERACTION_CREATE", slash("supportbot", sub="reindex", user_id=930000000000000078, name="mod",
                                              roles=(ADMIN_ROLE,)))
        sent = await recorder.wait_for(lambda s: len(finals(s)) == 2)
        assert finals(sent)[-1].payload["content"].startswith("Index v")
        assert len(core.index_ops.history.runs()) == runs + 1 and core.index_ops.history.last().started_by == "discord:930000000000000078"

        feed(bot, "INTERACTION_CREATE", slash("supportbot", sub="status", user_id=DISCORD_ADMIN, name="owner"))
        sent = await recorder.wait_for(lambda s: len(finals(s)) == 3)
        assert finals(sent)[-1].payload["content"].startswith("```\nindex version: ")
        await bot.close()

    run(scenario())


def test_insights_are_refused_to_others_and_summarised_for_admins(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(core.commands, core.feedback, recorder)
        feed(bot, "INTERACTION_CREATE", slash("supportbot", sub="insights", user_id=930000000000000077, name="guest"))
        sent = await recorder.wait_for(lambda s: finals(s))
        assert finals(sent)[-1].payload["content"] == "Sorry, /insights is for admins only."
        feed(bot, "INTERACTION_CREATE", slash("supportbot", [{"type": 3, "name": "since", "value": "2w"}],
                                              sub="insights", user_id=DISCORD_ADMIN, name="owner"))
        sent = await recorder.wait_for(lambda s: len(finals(s)) == 2)
        shown = finals(sent)[-1].payload["content"]
        report = core.insights.report("2w")
        assert shown.splitlines()[0] == report.summary().splitlines()[0]
        assert shown.startswith(f"Since ") and f" {report.current.questions} questions, " in shown
        await bot.close()

    run(scenario())


def test_a_notice_with_a_chart_is_one_message_with_the_file_and_pings_nobody(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(core.commands, core.feedback, recorder)
        text = "This week: 3 questions, 67% answered.\nTop gaps:\n1. Can <@930000000000000001> use @everyone? (1 question)"
        await bot.post_notice(str(CHANNEL_ID), text, file=("supportbot-insights.png", b"\x89PNG fake chart"))
        (sent,) = [s for s in recorder.sent if s.url.endswith(f"/channels/{CHANNEL_ID}/messages")]
        assert sent.method == "POST" and sent.payload["content"] == text
        assert sent.payload["files"] == [("supportbot-insights.png", b"\x89PNG fake chart")]
        assert sent.payload["allowed_mentions"] == {"parse": []}  # people's questions ping nobody
        await bot.close()

    run(scenario())


def test_commands_sync_to_the_guild_with_manage_server_as_the_default_permission(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(core.commands, core.feedback, recorder)
        synced = next(s for s in recorder.sent if s.method == "PUT")
        assert synced.url.endswith(f"/applications/{APP_ID}/guilds/{GUILD_ID}/commands")
        commands = {c["name"]: c for c in synced.payload["list"]}
        assert set(commands) == {"ask", "supportbot"}
        assert int(commands["supportbot"]["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
        assert {o["name"] for o in commands["supportbot"]["options"]} == {"reindex", "status", "voice", "insights"}
        assert commands["ask"]["default_member_permissions"] is None
        await bot.close()

    run(scenario())
    assert intents().value == discord.Intents(guilds=True, guild_messages=True, message_content=True).value


def long_answer() -> str:
    """A real, varied text of ~4,500 characters (the sample retention policy), every
    sentence citing [1]: what a verbose model could write."""
    policy = (bundled_sample_docs() / "legal" / "data-retention.txt").read_text()
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(policy.split())) if len(s.strip()) > 30]
    return " ".join(s.rstrip(".") + " [1]." for s in sentences)


def test_a_long_answer_is_split_at_sentences_under_the_limits(core) -> None:
    long_text = long_answer()
    answers = FixedAnswers(core.knowledge.retriever, long_text, "legal/data-retention.txt")
    registry = build_registry(AccessPolicy(), answers, core.index_ops, core.status_report)

    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(registry, core.feedback, recorder)
        feed(bot, "INTERACTION_CREATE", slash("ask", ask_options("How do I install Driftwood on Linux?")))
        sent = await recorder.wait_for(lambda s: any(x.method == "POST" and x.payload.get("components") for x in s))
        first = finals(sent)[-1].payload["content"]
        more = [s.payload for s in sent if s.method == "POST" and "/webhooks/" in s.url]
        pieces = [first] + [p["content"] for p in more]
        assert len(pieces) >= 3 and all(len(p) <= 2000 for p in pieces)
        assert all(p.endswith(" [1].") for p in pieces)  # whole sentences, citations intact
        assert " ".join(pieces) == long_text
        assert more[-1]["embeds"] and button_ids(more[-1])  # sources and buttons after the last piece
        await bot.close()

    run(scenario())


def test_thumbs_down_stores_feedback_and_opens_the_form_and_buttons_survive_a_restart(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(core.commands, core.feedback, recorder)
        feed(bot, "INTERACTION_CREATE", slash("ask", ask_options("How do I turn on two-factor authentication?")))
        sent = await recorder.wait_for(lambda s: finals(s))
        down = next(i for i in button_ids(finals(sent)[-1].payload) if i.startswith("sb:down:"))
        await bot.close()

        restarted = await online(core.commands, core.feedback, Recorder())  # a new process, same store
        feed(restarted, "INTERACTION_CREATE", button(down))
        sent = await restarted_recorder(restarted).wait_for(lambda s: any(x.url.endswith("/callback") for x in s))
        modal = next(s for s in sent if s.url.endswith("/callback")).payload
        assert modal["type"] == 9 and modal["data"]["custom_id"] == "sb:wrong:" + down.split(":")[2]
        rows = core.feedback._db.execute("SELECT user_id, rating FROM feedback WHERE answer_id = ?",
                                         (down.split(":")[2],)).fetchall()
        assert rows == [(core.feedback.stored_user_id("discord:930000000000000001"), -1)]
        await restarted.close()

    run(scenario())


def restarted_recorder(bot: SupportBot) -> Recorder:
    return bot.http.request.__self__.recorder  # type: ignore[attr-defined]


def test_an_exception_in_the_core_becomes_an_error_reply_and_the_bot_keeps_going(core) -> None:
    class Broken(ScriptedGenerator):
        def stream(self, messages, max_new_tokens=None, voice=None):
            raise RuntimeError("model file vanished")

        generate = stream

    broken = AnswerService(core.knowledge.retriever, Broken(), active_voice=lambda: "crew",  # the voice's lead-in fails
                           voice_frames=lambda name: driftwood_frame())
    registry = build_registry(AccessPolicy(), broken, core.index_ops, core.status_report)

    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(registry, core.feedback, recorder)
        feed(bot, "INTERACTION_CREATE", slash("ask", ask_options("How much does the Team plan cost?")))
        sent = await recorder.wait_for(lambda s: finals(s))
        assert finals(sent)[-1].payload["content"] == "Something went wrong running /ask; the error was logged."
        bot.chat.commands = core.commands  # the next question, through the same bot, is answered
        feed(bot, "INTERACTION_CREATE", slash("ask", ask_options("How do I get a refund?")))
        sent = await recorder.wait_for(lambda s: len(finals(s)) == 2)
        assert finals(sent)[-1].payload.get("embeds")
        await bot.close()

    run(scenario())
    assert ERROR_TEXT  # the adapter's own fallback text exists for failures outside the core


def test_a_mention_opens_a_thread_and_a_follow_up_there_needs_no_mention(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(core.commands, core.feedback, recorder)
        alice = user(930000000000000001, "alice")
        mention = message(f"<@{BOT_ID}> How do I install Driftwood on Windows?", CHANNEL_ID, alice,
                          guild_id=str(GUILD_ID), mentions=[user(BOT_ID, "supportbot", bot=True)])
        feed(bot, "MESSAGE_CREATE", mention)
        sent = await recorder.wait_for(lambda s: any(x.payload.get("components") for x in s))
        opened = next(s for s in sent if s.url.endswith("/threads"))
        assert f"/channels/{CHANNEL_ID}/messages/{mention['id']}/threads" in opened.url
        assert opened.payload["name"] == "How do I install Driftwood on Windows?"
        thread_posts = [s for s in sent if s.method == "POST" and s.url.endswith("/messages")]
        thread_id = thread_posts[0].url.split("/channels/")[1].split("/")[0]
        assert thread_posts[0].payload["content"] == PLACEHOLDER
        final = [s for s in sent if s.method == "PATCH" and s.payload.get("components")][-1].payload
        assert "install-windows.md" in final["embeds"][0]["description"]

        follow_up = message("and on macOS?", int(thread_id), alice, guild_id=str(GUILD_ID))
        feed(bot, "MESSAGE_CREATE", follow_up)
        sent = await recorder.wait_for(lambda s: len([x for x in s if x.payload.get("components")]) == 2)
        answered = [s for s in sent if s.payload.get("components")][-1]
        assert f"/channels/{thread_id}/" in answered.url
        assert "install-macos.md" in answered.payload["embeds"][0]["description"]
        chatter = message("lunch anyone?", CHANNEL_ID, alice, guild_id=str(GUILD_ID))
        feed(bot, "MESSAGE_CREATE", chatter)  # no mention, not our thread: nothing happens
        await asyncio.sleep(0)
        assert len(recorder.sent) == len(sent)
        await bot.close()

    run(scenario())


def test_the_invite_asks_for_exactly_the_permissions_the_bot_uses() -> None:
    assert INVITE_PERMISSIONS.value == discord.Permissions(
        view_channel=True, send_messages=True, send_messages_in_threads=True, create_public_threads=True,
        embed_links=True, read_message_history=True).value
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"permissions={INVITE_PERMISSIONS.value}&scope=bot%20applications.commands" in readme


@pytest.mark.parametrize("sharded", [False, True])
def test_the_bot_can_be_sharded_by_config(core, sharded: bool) -> None:
    from adapters.discord.bot import ShardedSupportBot, make_bot

    async def scenario() -> None:
        bot = make_bot(ChatFlow(core.commands, core.feedback, WorkQueue()), DiscordSettings(), sharded=sharded)
        assert isinstance(bot, ShardedSupportBot) == sharded and isinstance(bot, discord.Client)
        assert bot.intents.message_content and not bot.intents.members  # never started: nothing to close

    run(scenario())


def test_after_a_restart_follow_ups_in_its_threads_still_need_no_mention(core) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        bot = await online(core.commands, core.feedback, recorder)  # a fresh process: no threads in memory
        thread_id = 940000000000000001
        feed(bot, "THREAD_CREATE", {  # the gateway tells every process about active threads
            "id": str(thread_id), "type": 11, "guild_id": str(GUILD_ID), "parent_id": str(CHANNEL_ID),
            "owner_id": str(BOT_ID), "name": "How do I get a refund?", "message_count": 2, "member_count": 2,
            "rate_limit_per_user": 0, "flags": 0, "last_message_id": None, "newly_created": False,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                "archive_timestamp": "2026-11-21T08:00:00+00:00"}})
        alice = user(930000000000000001, "alice")
        feed(bot, "MESSAGE_CREATE", message("and for annual plans?", thread_id, alice, guild_id=str(GUILD_ID)))
        sent = await recorder.wait_for(lambda s: any(x.payload.get("components") for x in s))
        answered = [s for s in sent if s.payload.get("components")][-1]
        assert f"/channels/{thread_id}/" in answered.url and answered.payload["embeds"]
        await bot.close()

    run(scenario())
