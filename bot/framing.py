"""The model's part of a composed answer, in the active voice: the lead-in above the quoted
facts and the sign-off after them. The voice's frame (its greetings and sign-off) is the
team's own text, learned from its example replies (bot.voice_frame) and used exactly as
written. The voice adapter writes the first line of each answer; it is kept only as the
greeting it picked, or as a framing line that states no fact - no identifier, no number,
no yes/no or negation, no Markdown debris, words the team frames its own facts with - and
only for a voice whose replies open with a greeting at all (terse voices get no lead-in).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from bot.grounding import content_terms, identifiers, missing_identifiers
from bot.prompting import build_messages
from bot.protocols import Generator
from bot.types import Turn
from bot.voice_frame import VoiceFrame

LEAD_TOKENS = 24
LEAD_CONTEXT_WORDS = 40  # of the composed body, shown to the model writing the lead-in
log = logging.getLogger(__name__)
FrameSource = Callable[[str], "VoiceFrame | None"]  # voice name -> its learned frame, None when unknown
NO_FRAME = VoiceFrame(reasons=("no example replies known for this voice",))


@dataclass(frozen=True)
class QuotedFacts:
    """The composed body as the one passage a framing prompt shows."""

    text: str
    location: str = "Answer"


class Framer:
    """The frame of a composed answer in a voice: the greeting (the one the model opened
    with, else the team's most common) with the model's framing line for this question when
    it states nothing, and the team's sign-off."""

    def __init__(self, generator: Generator, frames: FrameSource | None = None) -> None:
        self.generator = generator
        self.frames_of = frames
        self._frames: dict[str, VoiceFrame] = {}  # voice -> its frame, read once
        self._lock = threading.Lock()

    def frame(self, voice_name: str | None) -> VoiceFrame:
        """The voice's learned frame (none for the base model or a voice we know no replies of)."""
        if not voice_name or self.frames_of is None:
            return NO_FRAME
        with self._lock:
            if voice_name not in self._frames:
                frame = self.frames_of(voice_name) or NO_FRAME
                log.info("voice %s %s", voice_name, frame.summary())
                self._frames[voice_name] = frame
            return self._frames[voice_name]

    def lead_in(self, question: str, body: str, history: Sequence[Turn], voice: str | None,
                sources: Sequence[str], voice_name: str | None = None) -> str:
        """What opens this answer: "" for a voice whose replies open with their facts; else the
        greeting the model wrote (as the team writes it) or the team's most common one,
        followed by the model's own framing line when that line states nothing."""
        frame = self.frame(voice_name)
        if not frame.greetings:
            return ""
        picked, line = frame.split_greeting(self._write_lead(question, body, history, voice))
        greeting = picked or frame.greeting
        if line and framing_line(line, question, frame, sources):
            return f"{greeting}\n\n{line}"
        return greeting

    def _write_lead(self, question: str, body: str, history: Sequence[Turn], voice: str | None) -> str:
        """The first line the voice writes above `body` (the facts it will be followed by)."""
        opening = opening_of(body)
        messages = build_messages(question, [QuotedFacts(opening)], history, len(opening))
        return first_line_of(self.generator.stream(messages, max_new_tokens=LEAD_TOKENS, voice=voice))

    def sign_off(self, voice_name: str | None, voice: str | None = None) -> str:
        """The block the team closes its replies with, exactly as written, or "" when none."""
        return self.frame(voice_name).sign_off


def framing_line(line: str, question: str, frame: VoiceFrame, sources: Sequence[str]) -> bool:
    """A model-written line may follow the greeting when it frames this question (shares a
    word with it), says nothing a greeting of the team does not already say, states no fact
    and names nothing the passages or the team's own frame do not."""
    terms = content_terms(line)
    greeting_terms = set().union(*(content_terms(g) for g in frame.greetings))
    if not terms & content_terms(question) or terms <= greeting_terms:
        return False
    return (acceptable_framing(line, question, frame.vocabulary)
            and not missing_identifiers(line, [*sources, *frame.texts()]))


_DEBRIS = re.compile(r"^\s*(?:#|\||```|>|\d+[.)]|[-*+]\s)|\[\d+\]|\*\*|`|https?://|\bQuestion\b|\bAnswer\b|\bDocumentation\b",
                     re.IGNORECASE)
_STATEMENT_WORDS = re.compile(r"(?<![\w-])(?:yes|no|not|never|cannot|can't|don't|doesn't|isn't|won't|only|always|must|"
                              r"free|paid|cost|costs|price|limit|maximum|minimum|one|two|three|four|five|six|seven|"
                              r"eight|nine|ten|twice|once)(?![\w-])|n't\b", re.IGNORECASE)


def opening_of(body: str, words: int = LEAD_CONTEXT_WORDS) -> str:
    """What a lead-in is written above: the body's first sentences, up to about `words`
    words. A lead-in frames the answer's start; reading the whole body only costs prefill
    time (most of a lead-in's cost, and what many questions at once queue on)."""
    kept: list[str] = []
    for sentence in re.split(r"(?<=[.!?:])\s+", body.strip()):
        if kept and len(" ".join(kept + [sentence]).split()) > words:
            break
        kept.append(sentence)
    text = " ".join(kept)
    return text if len(text.split()) <= words * 1.5 else " ".join(text.split()[:words]) + " …"


def first_line_of(pieces: Iterator[str]) -> str:
    """The first non-empty line of streamed text, read no further: a generator stops
    decoding when its stream is closed, so a lead-in costs its own tokens, not the limit's."""
    text = ""
    try:
        for piece in pieces:
            text += piece
            if "\n" in text.lstrip():
                break
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
    return first_line(text)


def first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def acceptable_framing(line: str, question: str, vocabulary: frozenset[str] | set[str] = frozenset(),
                       max_words: int = 14) -> bool:
    """A model-written line may frame an answer when it cannot mislead: no identifiers,
    numbers, yes/no or negation, no Markdown or prompt debris, short, and made only of the
    question's words and the words the team frames its own facts with (`vocabulary`, learned
    from its replies: bot.voice_frame)."""
    words = line.split()
    if not words or len(words) > max_words or not re.search(r"[A-Za-z]{2}", line):
        return False
    if _DEBRIS.search(line) or _STATEMENT_WORDS.search(line) or re.search(r"\d", line):
        return False
    if identifiers(line) - {w.strip("!,.:;—-") for w in words if w[:1].isupper()}:
        return False
    if line.rstrip().endswith("?") or line.lower().startswith(question.lower()[:30]):
        return False  # a question back, or the question echoed
    return not content_terms(line) - content_terms(question) - set(vocabulary)
