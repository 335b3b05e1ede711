"""Markdown (what the model writes) to Slack mrkdwn (what Slack renders).

Slack's flavour differs just enough to break answers: *one* asterisk is bold, links are
<url|text>, there are no headings, and &, < and > must be escaped. Code is left verbatim.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[^\n`]*\n?(.*?)```", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+|mailto:[^)\s]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.M)


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    kept: list[str] = []

    def keep(value: str) -> str:
        kept.append(value)
        return f"\x00{len(kept) - 1}\x00"

    text = _FENCE.sub(lambda m: keep("```" + escape(m.group(1).rstrip("\n")) + "```"), markdown)
    text = _INLINE_CODE.sub(lambda m: keep("`" + escape(m.group(1)) + "`"), text)
    text = _LINK.sub(lambda m: keep(f"<{m.group(2)}|{escape(m.group(1)).replace('|', '¦')}>"), text)
    text = escape(text)
    text = _HEADING.sub(lambda m: keep("*" + m.group(1).strip("*_ ") + "*"), text)
    text = _BOLD.sub(lambda m: keep("*" + m.group(2) + "*"), text)
    text = _ITALIC.sub(lambda m: "_" + m.group(1) + "_", text)
    text = _STRIKE.sub(lambda m: "~" + m.group(1) + "~", text)
    text = _BULLET.sub(lambda m: m.group(1) + "• ", text)
    while "\x00" in text:
        text = re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)
    return text


def plain_text(markdown: str) -> str:
    """A message's `text` beside its blocks (notifications, screen readers): the words
    without Markdown's markers (**bold**, `code`, # headings, [links](url) as "links (url)")."""
    text = _FENCE.sub(lambda m: m.group(1).rstrip("\n"), markdown)
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    text = _INLINE_CODE.sub(lambda m: m.group(1), text)
    text = _HEADING.sub(lambda m: m.group(1).strip("*_ "), text)
    text = _BOLD.sub(lambda m: m.group(2), text)
    text = _ITALIC.sub(lambda m: m.group(1), text)
    return _STRIKE.sub(lambda m: m.group(1), text)
