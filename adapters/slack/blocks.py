"""Block Kit for answers: the text, numbered sources as links, feedback buttons; and the
"what was wrong" modal. Action ids are stable so buttons work across restarts."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from adapters.slack.mrkdwn import escape, to_mrkdwn
from bot.message_split import split_message
from bot.types import Citation

UP, DOWN, HUMAN, POST = "sb_feedback_up", "sb_feedback_down", "sb_talk_to_human", "sb_post_to_channel"
FEEDBACK_MODAL = "sb_feedback_modal"
WRONG_BLOCK, WRONG_INPUT = "what_was_wrong", "what_was_wrong_input"
FIX_BLOCK, FIX_INPUT = "correction", "correction_input"

_SECTION_LIMIT = 3000  # characters of text per section block
# Slack's special mentions that notify a whole channel, workspace or user group.
_MASS_MENTION = re.compile(r"<!(channel|here|everyone)(?:\|[^>]*)?>|<!subteam\^([A-Za-z0-9]+)(?:\|([^>]*))?>")
T = TypeVar("T", str, list)


def without_mass_mentions(value: T, keep_group: str | None = None) -> T:
    """`value` (a message's text, or its blocks) with each <!channel>, <!here>, <!everyone>
    and <!subteam^…> other than `keep_group` (the helpers "talk to a human" calls) written
    as plain text: a question or a doc that says "@here" must not make the bot notify everyone."""
    def plain(match: re.Match) -> str:
        if match.group(2) is not None:
            if match.group(2) == keep_group:
                return match.group(0)
            return "@" + (match.group(3) or "group").lstrip("@")
        return "@" + match.group(1)

    if isinstance(value, str):
        return _MASS_MENTION.sub(plain, value)
    return json.loads(_MASS_MENTION.sub(plain, json.dumps(value)))


def sources_line(citations: Sequence[Citation], abstained: bool = False) -> str:
    parts = []
    for c in citations:
        title = escape(c.title).replace("|", "¦")
        parts.append(f"[{c.n}] <{c.url}|{title}>" if c.url else f"[{c.n}] {title} ({escape(c.source)})")
    return ("Closest pages: " if abstained else "Sources: ") + "  ·  ".join(parts)


def answer_blocks(text: str, citations: Sequence[Citation], answer_id: str | None, abstained: bool = False,
                  can_post: bool = False, footer: str | None = None, heading: str = "") -> list[dict[str, Any]]:
    """`text` is the model's Markdown; `heading` is ready-made mrkdwn put before it."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}}
        for piece in split_message(heading + to_mrkdwn(text), _SECTION_LIMIT)
    ]
    context = [sources_line(citations, abstained)] if citations else []
    if footer:
        context.append(footer)
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": t[:_SECTION_LIMIT]} for t in context]})
    if answer_id:
        buttons = [
            _button(UP, "👍", answer_id), _button(DOWN, "👎", answer_id), _button(HUMAN, "Talk to a human", answer_id),
        ]
        if can_post:
            buttons.insert(0, _button(POST, "Post to channel", answer_id, style="primary"))
        blocks.append({"type": "actions", "block_id": f"feedback:{answer_id}", "elements": buttons})
    return blocks


def _button(action_id: str, label: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action_id, "value": value,
                              "text": {"type": "plain_text", "text": label, "emoji": True}}
    if style:
        button["style"] = style
    return button


def feedback_modal(answer_id: str, channel: str | None, thread_ts: str | None, admin: bool) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{
        "type": "input", "block_id": WRONG_BLOCK, "optional": True,
        "label": {"type": "plain_text", "text": "What was wrong? (optional)"},
        "element": {"type": "plain_text_input", "action_id": WRONG_INPUT, "multiline": True, "max_length": 2000},
    }]
    if admin:
        blocks.append({
            "type": "input", "block_id": FIX_BLOCK, "optional": True,
            "label": {"type": "plain_text", "text": "Correct answer (admins; used to train the brand voice)"},
            "element": {"type": "plain_text_input", "action_id": FIX_INPUT, "multiline": True, "max_length": 3000},
        })
    return {
        "type": "modal", "callback_id": FEEDBACK_MODAL, "private_metadata": f"{answer_id}|{channel or ''}|{thread_ts or ''}",
        "title": {"type": "plain_text", "text": "Thanks for the feedback"},
        "submit": {"type": "plain_text", "text": "Send"}, "close": {"type": "plain_text", "text": "Skip"},
        "blocks": blocks,
    }
