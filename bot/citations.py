"""Keep the citations a generated answer makes to passages that exist; drop invented ones."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


def cited_numbers(text: str, available: int) -> tuple[str, list[int]]:
    """Return the text with invalid [n] markers removed, and valid numbers in first-cited order."""
    order: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(",")]
        valid = [n for n in numbers if 1 <= n <= available]
        for n in valid:
            if n not in order:
                order.append(n)
        return "".join(f"[{n}]" for n in valid)

    cleaned = _MARKER.sub(keep_valid, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
    return cleaned.strip(), order
