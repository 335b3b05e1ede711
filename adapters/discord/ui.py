"""Discord pieces of an answer: message-sized text, the sources embed, and feedback buttons
that keep working after a restart (dynamic items: the answer id lives in the custom id)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import discord

from bot.chat_flow import ChatFlow
from bot.message_split import split_message
from bot.types import Citation

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
BUTTON_TEMPLATE = r"sb:(?P<kind>up|down|human):(?P<answer>[0-9a-f]{8,32})"
_LABELS = {"up": ("👍", discord.ButtonStyle.secondary), "down": ("👎", discord.ButtonStyle.secondary),
           "human": ("Talk to a human", discord.ButtonStyle.primary)}


def message_pieces(text: str) -> list[str]:
    return split_message(text, MESSAGE_LIMIT)


class FeedbackHandler(Protocol):
    """The bot client, as the persistent buttons reach it (`interaction.client`)."""

    async def on_feedback(self, interaction: discord.Interaction, kind: str, answer_id: str) -> None: ...

def sources_embed(citations: Sequence[Citation], abstained: bool = False,
                  footer: str | None = None) -> discord.Embed | None:
    """Numbered sources as links, whole lines only, within the embed limits."""
    if not citations:
        return None
    lines: list[str] = []
    used = 0
    for c in citations:
        title = c.title.replace("[", "(").replace("]", ")")[:200]
        line = f"**[{c.n}]** [{title}]({c.url})" if c.url else f"**[{c.n}]** {title} · `{c.source}`"
        if used + len(line) + 1 > EMBED_DESCRIPTION_LIMIT:
            break
        lines.append(line)
        used += len(line) + 1
    embed = discord.Embed(title="Closest pages" if abstained else "Sources", description="\n".join(lines),
                          colour=discord.Colour.blurple())
    if footer:
        embed.set_footer(text=footer[:2048])
    return embed


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button], template=BUTTON_TEMPLATE):
    """👍 / 👎 / "Talk to a human" for one stored answer."""

    def __init__(self, kind: str, answer_id: str) -> None:
        label, style = _LABELS[kind]
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=f"sb:{kind}:{answer_id}"))
        self.kind = kind
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: Any) -> FeedbackButton:
        return cls(match["kind"], match["answer"])

    async def callback(self, interaction: discord.Interaction) -> None:
        core: FeedbackHandler = interaction.client  # type: ignore[assignment]
        try:
            await core.on_feedback(interaction, self.kind, self.answer_id)
        except Exception:  # View.on_error would only log: the user must hear about it
            log.exception("feedback button %s failed", self.custom_id)
            if not interaction.response.is_done():
                await interaction.response.send_message("Sorry, that didn't work; the error was logged.",
                                                        ephemeral=True)


def feedback_view(answer_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for kind in ("up", "down", "human"):
        view.add_item(FeedbackButton(kind, answer_id))
    return view


class WhatWasWrong(discord.ui.Modal, title="Thanks for the feedback"):
    def __init__(self, chat: ChatFlow, answer_id: str, admin: bool) -> None:
        super().__init__(timeout=900, custom_id=f"sb:wrong:{answer_id}")
        self.chat = chat
        self.answer_id = answer_id
        self.admin = admin
        self.wrong = discord.ui.TextInput(label="What was wrong? (optional)", style=discord.TextStyle.paragraph,
                                          required=False, max_length=2000)
        self.add_item(self.wrong)
        self.fix: discord.ui.TextInput | None = None
        if admin:
            self.fix = discord.ui.TextInput(label="Correct answer (admins; trains the voice)", required=False,
                                            style=discord.TextStyle.paragraph, max_length=3000)
            self.add_item(self.fix)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        wrong = (self.wrong.value or "").strip()
        fix = (self.fix.value or "").strip() if self.fix is not None else ""
        problem = self.chat.comment(self.answer_id, f"discord:{interaction.user.id}", wrong, fix, by_admin=self.admin)
        if problem:
            await interaction.response.send_message(problem, ephemeral=True)
            return
        await interaction.response.send_message("Thanks, noted.", ephemeral=True)
