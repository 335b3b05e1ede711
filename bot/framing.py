"""The model's part of a composed answer: a lead-in before the quoted facts and a sign-off
after them, in the active voice. The voice adapter was trained to open and close replies
in the team's way; here it does only that, and what it writes is kept only when it states
no fact: no identifier, no number, no yes/no or negation, no Markdown debris, a line short
enough to be a greeting or a framing phrase.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.grounding import content_terms, identifiers
from bot.types import ChatMessage

LEAD_TOKENS = 24
SIGN_OFF_TOKENS = 20
_DEBRIS = re.compile(r"^\s*(?:#|\||```|>|\d+[.)]|[-*+]\s)|\[\d+\]|\*\*|`|https?://|\bQuestion\b|\bAnswer\b|\bDocumentation\b",
                     re.IGNORECASE)
_STATEMENT_WORDS = re.compile(r"(?<![\w-])(?:yes|no|not|never|cannot|can't|don't|doesn't|isn't|won't|only|always|must|"
                              r"free|paid|cost|costs|price|limit|maximum|minimum|one|two|three|four|five|six|seven|"
                              r"eight|nine|ten|twice|once)(?![\w-])|n't\b", re.IGNORECASE)
_FRAMING_VOCABULARY = content_terms("""here how what steps step follow following below answer question docs documentation
page pages guide section help helps glad happy great good news short sure thing quick look looks let take
hope hoping luck best regards cheers thanks thank welcome aboard hello there team crew folks friend you're
we've got covered scoop lowdown details detail info information right way simple easy""")


def sign_off_messages(prompt: Sequence[ChatMessage], so_far: str) -> list[ChatMessage]:
    """The reply so far as the assistant's own unfinished message: the model continues it
    the way its voice ends a reply."""
    return [*prompt, ChatMessage(role="assistant", content=so_far.rstrip() + "\n\n")]


def first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def acceptable_framing(line: str, question: str, max_words: int = 14, free_words: int = 5) -> bool:
    """A line may open or close an answer when it cannot mislead: no identifiers, numbers,
    yes/no or negation, no Markdown or prompt debris, short, and - beyond a short greeting -
    made of the question's words and everyday framing words only."""
    words = line.split()
    if not words or len(words) > max_words or not re.search(r"[A-Za-z]{2}", line):
        return False
    if _DEBRIS.search(line) or _STATEMENT_WORDS.search(line) or re.search(r"\d", line):
        return False
    if identifiers(line) - {w.strip("!,.:;—-") for w in words if w[:1].isupper()}:
        return False
    if line.rstrip().endswith("?") or line.lower().startswith(question.lower()[:30]):
        return False  # a question back, or the question echoed
    if len(words) <= free_words:
        return True  # "Ahoy!", "Welcome aboard!", "Smooth sailing! — the Driftwood crew"
    unknown = content_terms(line) - content_terms(question) - _FRAMING_VOCABULARY
    return len(unknown) <= 1
