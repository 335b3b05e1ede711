"""Plain-text rendering of an answer's numbered sources, shared by the CLI and the console."""

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
