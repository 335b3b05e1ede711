"""Rendering pieces every front end shares: plain-text sources (CLI, console) and the
freshness line (also under Slack's and Discord's sources)."""

from __future__ import annotations

from bot.types import Answer


def plain_sources(answer: Answer) -> str:
    if not answer.citations:
        return ""
    label = "Closest pages" if answer.abstained else "Sources"
    lines = [f"{label}:"]
    for c in answer.citations:
        lines.append(f"  [{c.n}] {c.title} - {c.source}" + (f" <{c.url}>" if c.url else ""))
    if answer.indexed_at:
        lines.append(f"(docs indexed {answer.indexed_at})")
    return "\n".join(lines)


def freshness_line(answer: Answer) -> str | None:
    """The footer under a chat platform's sources when answers carry their freshness
    (answers.show_indexed_at)."""
    return f"Docs indexed {answer.indexed_at}" if answer.indexed_at else None
