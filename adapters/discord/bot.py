"""Discord: /ask, mentions answered in a thread, /supportbot admin commands, feedback.

A `commands.Bot` subclass with the core's chat flow injected. Each handler translates an
interaction or message into a chat-flow call and what comes back into Discord messages:
defer at once (the 3-second rule), stream by editing at most about once a second, then the
text (split under 2,000 characters between sentences), a sources embed and persistent
buttons. Whatever happens, the user is told: answer, nothing relevant, error or busy.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.ui import FeedbackButton, WhatWasWrong, feedback_view, message_pieces, sources_embed
from bot.chat_flow import EMPTY_QUESTION_TEXT, ERROR_TEXT, LOOKING_UP_TEXT, Asker, ChatFlow, ChatReply
from bot.rendering import freshness_line
from bot.types import Question

log = logging.getLogger(__name__)

PLACEHOLDER = f"*{LOOKING_UP_TEXT}*"
# What the invite asks for: read and answer in channels and the threads the bot opens.
INVITE_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True,
                                         create_public_threads=True, embed_links=True, read_message_history=True)


def intents(direct_messages: bool = False) -> discord.Intents:
    """Only what the bot uses: guilds (commands, threads), guild messages and their content
    (mentions and follow-ups; Message Content is a privileged intent to switch on), and
    direct messages only when the bot answers them."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.message_content = True
    wanted.dm_messages = direct_messages
    return wanted


# Answers never ping @everyone, @here or a role, whatever the docs or the question say; the
# "talk to a human" message alone allows the configured role.
NO_MASS_MENTIONS = discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=False)


@dataclass(frozen=True)
class DiscordSettings:
    guild_ids: tuple[int, ...] = ()  # sync commands to these guilds (instant); empty: globally
    admin_role_ids: frozenset[int] = field(default_factory=frozenset)
    human_role_id: int | None = None
    edit_interval_s: float = 1.0
    sync_commands: bool = True
    direct_messages: bool = False  # answer DMs to the bot (needs the DM intent)


class SupportBotCore:
    """The behaviour; mixed into commands.Bot or commands.AutoShardedBot (see make_bot)."""

    def __init__(self, chat: ChatFlow, settings: DiscordSettings, **kwargs: Any) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=intents(settings.direct_messages),
                         help_command=None, allowed_mentions=NO_MASS_MENTIONS, **kwargs)  # type: ignore[call-arg]
        self.chat = chat
        self.settings = settings

    # ----- setup ----------------------------------------------------------------------
    async def setup_hook(self) -> None:
        self.add_dynamic_items(FeedbackButton)
        self._add_commands()
        self.tree.on_error = self._on_tree_error
        if self.settings.sync_commands:
            await self.sync_commands()

    async def sync_commands(self) -> None:
        if self.settings.guild_ids:
            for guild_id in self.settings.guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()  # global: can take up to an hour to show everywhere

    def _add_commands(self) -> None:
        @app_commands.command(name="ask", description="Ask the docs a question")
        @app_commands.describe(question="What do you want to know?", private="Only you see the answer")
        async def ask(interaction: discord.Interaction, question: app_commands.Range[str, 1, 2000],
                      private: bool = False) -> None:
            await self.answer_interaction(interaction, question, private)

        admin = app_commands.Group(name="supportbot", description="Admin commands",
                                   default_permissions=discord.Permissions(manage_guild=True), guild_only=True)

        @admin.command(name="reindex", description="Re-index the docs now")
        async def reindex(interaction: discord.Interaction) -> None:
            await self.admin_command(interaction, "reindex")

        @admin.command(name="status", description="Index version, freshness and models")
        async def status(interaction: discord.Interaction) -> None:
            await self.admin_command(interaction, "status")

        @admin.command(name="insights", description="What the docs did not answer: rates, gaps, 👎 pages")
        @app_commands.describe(since="Period back from now (7d, 24h, 2w) or a date (2026-11-30); default 7d")
        async def insights(interaction: discord.Interaction, since: str | None = None) -> None:
            await self.admin_command(interaction, "insights", since or "")

        @admin.command(name="voice", description="List, activate or roll back brand voices")
        @app_commands.describe(action="What to do", name="Voice name (for activate)")
        async def voice(interaction: discord.Interaction, action: Literal["list", "activate", "rollback"],
                        name: str | None = None) -> None:
            await self.admin_command(interaction, "voice", f"{action} {name or ''}".strip())

        self.tree.add_command(ask)
        self.tree.add_command(admin)

    # ----- /ask -----------------------------------------------------------------------
    async def answer_interaction(self, interaction: discord.Interaction, text: str, private: bool) -> None:
        await interaction.response.defer(ephemeral=private, thinking=True)
        channel = str(interaction.channel_id or "")
        question = Question(text=text, user_id=f"discord:{interaction.user.id}", conversation_id="",
                            channel_id=channel, platform="discord")

        async def send_more(content: str, **extra: Any) -> None:
            try:
                await interaction.followup.send(content, ephemeral=private, **extra)
            except discord.HTTPException as err:
                if not _token_expired(err):
                    raise
                await self._instead(interaction, private, content, **extra)

        async def first(**fields: Any) -> None:
            """The final reply; past the interaction token's 15 minutes (a long queue), it goes
            to the channel (or, if private, to the asker's DMs) instead of nowhere."""
            try:
                await interaction.edit_original_response(**fields)
            except discord.HTTPException as err:
                if not _token_expired(err):
                    raise
                log.warning("the /ask interaction expired before its answer; posting it %s instead",
                            "in a DM" if private else "in the channel")
                await self._instead(interaction, private, fields.pop("content", ""), **fields)

        await self._answer(question, send_more, first, stream=lambda text: interaction.edit_original_response(
            content=text))

    async def _instead(self, interaction: discord.Interaction, private: bool, content: str, **extra: Any) -> None:
        """A reply the expired interaction can no longer carry: to the asker's DMs if it was
        private, else to the channel, addressed to the asker."""
        if private:
            await interaction.user.send(content, **extra)
        else:
            await interaction.channel.send(f"{interaction.user.mention} {content}", **extra)  # type: ignore[union-attr]

    # ----- mentions and threads -------------------------------------------------------
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or self.user is None:
            return
        if not self.chat.first_delivery(f"discord:message:{message.id}"):
            log.info("message %s delivered again (a gateway resume); already handled", message.id)
            return
        try:
            if isinstance(message.channel, discord.DMChannel):
                if self.settings.direct_messages:
                    await self._answer_in_thread(message.channel, message, _without_mention(message, self.user.id))
                return
            if _opened_by(message.channel, self.user.id) or self.chat.owns_thread(f"discord:{message.channel.id}"):
                await self._answer_in_thread(message.channel, message, _without_mention(message, self.user.id))
            elif self.user in message.mentions and not isinstance(message.channel, discord.Thread):
                text = _without_mention(message, self.user.id)
                thread = await message.create_thread(name=(text or "Question")[:90], auto_archive_duration=1440)
                self.chat.remember_thread(f"discord:{thread.id}")
                await self._answer_in_thread(thread, message, text)
        except discord.HTTPException as err:
            log.error("could not answer message %s: %s", message.id, err)

    async def _answer_in_thread(self, thread: discord.abc.Messageable, message: discord.Message, text: str) -> None:
        if not text:
            await thread.send(EMPTY_QUESTION_TEXT)
            return
        question = Question(text=text, user_id=f"discord:{message.author.id}", conversation_id=f"discord:{thread.id}",
                            channel_id=str(getattr(message.channel, "parent_id", None) or message.channel.id),
                            platform="discord")
        async with self.chat.handling():  # a shutdown waits until the answer is posted
            placeholder = await thread.send(PLACEHOLDER)

            async def send_more(content: str, **extra: Any) -> None:
                await thread.send(content, **extra)

            await self._answer(question, send_more, first=lambda **fields: placeholder.edit(**fields))

    # ----- answering, shared by /ask and threads --------------------------------------
    async def _answer(self, question: Question, send_more: Callable[..., Awaitable[Any]],
                      first: Callable[..., Awaitable[Any]],
                      stream: Callable[[str], Awaitable[Any]] | None = None) -> None:
        """`first(**fields)` edits the message that says "working on it" (the deferred reply or
        the placeholder) into the answer; `stream(text)` edits it while the answer is written
        (default: `first`); `send_more` adds messages after it."""
        async with self.chat.handling():
            reply = await self.chat.ask_live(question, stream or (lambda text: first(content=text)),
                                             self.settings.edit_interval_s, fit=lambda text: message_pieces(text)[0])
            await self._send_reply(reply, send_more, first)

    async def _send_reply(self, reply: ChatReply, send_more: Callable[..., Awaitable[Any]],
                          first: Callable[..., Awaitable[Any]]) -> None:
        answer = reply.answer
        if answer is None or reply.answer_id is None:
            await first(content=message_pieces(reply.text)[0])
            return
        extra: dict[str, Any] = {"view": feedback_view(reply.answer_id)}
        embed = sources_embed(answer.citations, answer.abstained, freshness_line(answer))
        if embed is not None:
            extra["embed"] = embed
        pieces = message_pieces(answer.answer)
        if len(pieces) == 1:
            await first(content=pieces[0], **extra)
            return
        await first(content=pieces[0])
        for piece in pieces[1:-1]:
            await send_more(piece)
        await send_more(pieces[-1], **extra)

    # ----- admin commands -------------------------------------------------------------
    def _asker(self, interaction: discord.Interaction) -> Asker:
        roles = getattr(interaction.user, "roles", [])
        return Asker(f"discord:{interaction.user.id}", "discord", str(interaction.channel_id or ""),
                     platform_admin=any(role.id in self.settings.admin_role_ids for role in roles))

    async def admin_command(self, interaction: discord.Interaction, name: str, args: str = "") -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await self.chat.command_live(name, args, self._asker(interaction),
                                             edit=lambda line: interaction.edit_original_response(content=line),
                                             interval_s=self.settings.edit_interval_s)
        body = f"```\n{reply.text}\n```" if reply.monospace else reply.text
        await interaction.edit_original_response(content=message_pieces(body)[0])

    # ----- feedback -------------------------------------------------------------------
    async def on_feedback(self, interaction: discord.Interaction, kind: str, answer_id: str) -> None:
        if kind == "human":
            role = f"<@&{self.settings.human_role_id}>" if self.settings.human_role_id else None
            self.chat.escalate(answer_id, f"discord:{interaction.user.id}")
            await interaction.response.send_message(self.chat.human_request(role, interaction.user.mention),
                                                    allowed_mentions=discord.AllowedMentions(roles=True, users=True))
            return
        asker = self._asker(interaction)
        rated = self.chat.rate(answer_id, asker.user_id, +1 if kind == "up" else -1)
        if rated.message is not None:
            await interaction.response.send_message(rated.message, ephemeral=True)
            return
        await interaction.response.send_modal(WhatWasWrong(self.chat, answer_id, self.chat.is_admin(asker)))

    async def _on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        log.error("command %s failed: %s", interaction.command and interaction.command.qualified_name, error,
                  exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(ERROR_TEXT, ephemeral=True)
            else:
                await interaction.response.send_message(ERROR_TEXT, ephemeral=True)
        except discord.HTTPException:
            pass

    async def post_notice(self, channel_id: str, text: str, file: tuple[str, bytes] | None = None) -> None:
        """For the admins' channel (re-index summaries, the digest with its chart attached)."""
        channel = self.get_channel(int(channel_id)) or await self.fetch_channel(int(channel_id))
        pieces = message_pieces(text)
        for n, piece in enumerate(pieces, 1):
            attached = {"file": discord.File(io.BytesIO(file[1]), filename=file[0])} if file and n == len(pieces) else {}
            # questions quoted in a digest are people's words: they ping nobody
            await channel.send(piece, allowed_mentions=discord.AllowedMentions.none(),  # type: ignore[union-attr]
                               **attached)


class SupportBot(SupportBotCore, commands.Bot):
    pass


class ShardedSupportBot(SupportBotCore, commands.AutoShardedBot):
    """For large deployments: discord.py runs the shards Discord recommends."""


def make_bot(chat: ChatFlow, settings: DiscordSettings, sharded: bool = False,
             shard_count: int | None = None) -> SupportBotCore:
    if sharded:
        return ShardedSupportBot(chat, settings, shard_count=shard_count)
    return SupportBot(chat, settings)


def _opened_by(channel: object, bot_id: int) -> bool:
    """A thread the bot opened (known from the gateway's thread cache, so after a restart too)."""
    return isinstance(channel, discord.Thread) and channel.owner_id == bot_id


def _token_expired(err: discord.HTTPException) -> bool:
    """The interaction's webhook is gone (its token lasts 15 minutes): Discord answers 401
    "Invalid Webhook Token" or 404 "Unknown Webhook"."""
    return err.status in (401, 404) or getattr(err, "code", 0) in (50027, 10015)


def _without_mention(message: discord.Message, bot_id: int) -> str:
    return message.content.replace(f"<@{bot_id}>", "").replace(f"<@!{bot_id}>", "").strip()
