"""How good an answer is, measured without a judge model: how much of a reference answer's
content it holds, whether it invents identifiers, whether it reads as finished, and whether
it says Yes or No first when asked. Shared by `supportbot eval` and the answer benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.grounding import content_terms, missing_identifiers

_MARKERS = re.compile(r"\s?\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")
_ENDING = re.compile(r"(?:[.!?:)\]`*\"'|]|```)\s*$")


def recall(answer: str, reference: str) -> float:
    """Share of the reference answer's content words (stemmed) that the answer holds."""
    expected = content_terms(reference)
    if not expected:
        return 1.0
    return len(expected & content_terms(answer)) / len(expected)


def f1(answer: str, reference: str) -> float:
    """Harmonic mean of recall and precision (the share of the answer's content words the
    reference holds): a long answer that quotes the whole page scores high recall, low
    precision."""
    said = content_terms(_MARKERS.sub("", answer))
    expected = content_terms(reference)
    if not said or not expected:
        return 0.0
    shared = len(said & expected)
    return 2 * shared / (len(said) + len(expected))


def word_count(answer: str) -> int:
    return len(_MARKERS.sub("", answer).split())


def invented_identifiers(answer: str, passages: Sequence[str]) -> set[str]:
    """Identifiers (commands, numbers, paths, codes, labels) found in none of the passages."""
    return missing_identifiers(_MARKERS.sub("", answer), passages)


def garbled(answer: str) -> str | None:
    """Why an answer looks broken (cut off, half-open Markdown, list or heading debris), or None."""
    text = answer.strip()
    if not text:
        return "empty"
    if text.count("```") % 2:
        return "unclosed code block"
    outside_code = re.sub(r"```.*?```", "", text, flags=re.S)
    if outside_code.count("**") % 2:
        return "unclosed bold"
    lines = [line.strip() for line in outside_code.splitlines() if line.strip()]
    if any(re.fullmatch(r"(?:#+|\d+[.)]|[-*+]|#+\s*\d+[.)]?)", line) for line in lines):
        return "list or heading debris"
    if any(re.fullmatch(r"[*_~`#>\s]+", _MARKERS.sub("", line)) for line in lines):
        return "empty markup"  # "****" or "** **": emphasis around nothing
    if any(re.match(r"#{1,6}\s", line) for line in lines[-1:]):
        return "ends on a heading"
    if len(lines) != len(set(lines)) and len(lines) - len(set(lines)) >= 2:
        return "repeated lines"
    last = _MARKERS.sub("", lines[-1]) if lines else ""
    if re.match(r"(?:[-*+|]|\d+[.)])\s", last) or _ENDING.search(last):
        return None  # a list item or table row may end without a stop
    if len(last.split()) > 8 or not re.search(r"[A-Za-z]$", last):
        return "cut off"  # a sentence may not; a short closing line (a sign-off) may end on a word
    return None


def yes_no_of(answer: str) -> str | None:
    """"Yes"/"No" when the answer opens with it (after a short greeting line at most)."""
    paragraphs = [p.strip() for p in answer.strip().split("\n\n") if p.strip()]
    for paragraph in paragraphs[:2]:
        match = re.match(r"(yes|no)\b", paragraph, re.IGNORECASE)
        if match:
            return match.group(1).capitalize()
    return None
