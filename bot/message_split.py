"""Cutting a long answer into pieces a chat platform accepts (Slack: 3,000 characters a
section; Discord: 2,000 a message) without cutting a sentence or a citation in half.

Cuts go between paragraphs first, then after a sentence together with the citations that
close it ("... per month. [1] [2]" stays whole), and only for a sentence longer than a whole
piece, at a space (a citation marker has none, so it is never split).
"""

from __future__ import annotations

import re

_PARAGRAPH = re.compile(r"(\n\s*\n)")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?:\s*\[\d+(?:\s*,\s*\d+)*\])*\s+")


def split_message(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters that join back to `text` (up to whitespace)."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for unit in _units(text, limit):
        if len(current) + len(unit) <= limit:
            current += unit
            continue
        if current.strip():
            pieces.append(current.strip())
        current = unit.lstrip()
    if current.strip():
        pieces.append(current.strip())
    return pieces


def _units(text: str, limit: int) -> list[str]:
    """Paragraphs, or the sentences of a paragraph too long for one piece, or the words of
    a sentence too long for one piece; each keeps its trailing whitespace."""
    units: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        if len(paragraph) <= limit:
            units.append(paragraph)
            continue
        for sentence in _sentences(paragraph):
            while len(sentence) > limit:
                cut = sentence.rfind(" ", 0, limit)
                cut = cut if cut > 0 else limit
                units.append(sentence[:cut] + " ")
                sentence = sentence[cut:].lstrip()
            units.append(sentence)
    return units


def _sentences(paragraph: str) -> list[str]:
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        sentences.append(paragraph[start:match.end()])
        start = match.end()
    if start < len(paragraph):
        sentences.append(paragraph[start:])
    return sentences
