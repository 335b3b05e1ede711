"""The model's part of a composed answer: a lead-in before the quoted facts and a sign-off
after them, in the active voice. The voice adapter was trained to open and close replies
in the team's way; here it does only that, and what it writes is kept only when it states
no fact: no identifier, no number, no yes/no or negation, no Markdown debris, a line short
enough to be a greeting or a framing phrase.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bot.generated_text import tidy
from bot.grounding import content_terms, identifiers, missing_identifiers
from bot.prompting import build_messages
from bot.protocols import Generator
from bot.types import Turn

LEAD_TOKENS = 24
LEAD_CONTEXT_WORDS = 40  # of the composed body, shown to the model writing the lead-in
REPLY_TOKENS = 112
log = logging.getLogger(__name__)
# Short questions with one quoted fact: what the voice answers in full once, to show how it
# closes a reply (a composed body is not the voice's own writing, so it will not close that).
_SAMPLE_REPLIES = (
    ("How do I get started?", "Install the app, sign in, and choose a folder to sync [1]."),
    ("Where can I change my password?", "Open the account settings page and choose Change password [1]."),
    ("Can I use it on my phone?", "Yes, the mobile app is available for phones and tablets [1]."),
)
# More questions the voice opens a reply to (a lead-in each, no full reply): a voice whose
# replies often open straight with the facts still shows its greeting in a few of these.
_SAMPLE_LEADS = _SAMPLE_REPLIES + (
    ("How do I invite a colleague?", "Open Team settings and choose Invite [1]."),
    ("Why is my upload slow?", "Uploads pause while the computer is on a metered connection [1]."),
    ("What happens to deleted files?", "Deleted files stay in the trash for 30 days [1]."),
    ("Do you have a status page?", "Service status is published at the status page [1]."),
    ("Can I get an invoice?", "Invoices are in Billing settings [1]."),
)


@dataclass(frozen=True)
class QuotedFacts:
    """The composed body as the one passage a framing prompt shows."""

    text: str
    location: str = "Answer"


class Framer:
    """The model's part of a composed answer, in a voice: a lead-in written for this
    question (the voice's greeting, or a framing phrase), and the voice's sign-off, learned
    once per voice from replies it writes in full. Each is kept only if it states nothing."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self._frames: dict[str, tuple[str, str]] = {}  # voice -> (greeting, sign-off)
        self._lock = threading.Lock()

    def lead_in(self, question: str, body: str, history: Sequence[Turn], voice: str | None,
                sources: Sequence[str], voice_name: str | None = None) -> str:
        """This question's lead-in; when what the model wrote states a fact and a voice is
        active, the greeting that voice opens its own replies with."""
        lead = self._write_lead(question, body, history, voice)
        if acceptable_framing(lead, question) and not missing_identifiers(lead, sources):
            return lead
        return self._learned(voice_name, voice)[0] if voice_name else ""

    def _write_lead(self, question: str, body: str, history: Sequence[Turn], voice: str | None) -> str:
        """The first line the voice writes above `body` (the facts it will be followed by)."""
        opening = opening_of(body)
        messages = build_messages(question, [QuotedFacts(opening)], history, len(opening))
        return first_line_of(self.generator.stream(messages, max_new_tokens=LEAD_TOKENS, voice=voice))

    def sign_off(self, voice_name: str, voice: str | None) -> str:
        """The line the voice ends its own replies with (most common over a few sample
        replies), or "" when it has none."""
        return self._learned(voice_name, voice)[1]

    def _learned(self, voice_name: str, voice: str | None) -> tuple[str, str]:
        with self._lock:
            if voice_name not in self._frames:
                self._frames[voice_name] = self._learn_frame(voice)
            return self._frames[voice_name]

    def _learn_frame(self, voice: str | None) -> tuple[str, str]:
        """(greeting, sign-off) the voice's own sample replies agree on; "" where they don't."""
        greetings: Counter[str] = Counter()
        endings: Counter[str] = Counter()
        for question, fact in _SAMPLE_REPLIES:
            reply = self.generator.generate(build_messages(question, [QuotedFacts(fact)], []),
                                            max_new_tokens=REPLY_TOKENS, voice=voice)
            lines = [line.strip() for line in tidy(reply).splitlines() if line.strip()]
            if lines and acceptable_framing(lines[0], question):
                greetings[lines[0]] += 1
            # a small model may loop or stop mid-line: every closing-like line after the
            # greeting gets one vote per reply, and a line the replies share wins
            closing = {line for line in lines[1:] if line != lines[0] and not line.endswith(":")
                       and acceptable_framing(line, question, free_words=8)}
            closing = {line for line in closing if not any(o != line and o.startswith(line) for o in closing)}
            # one reply's "Smooth sailing!" and another's "Smooth sailing! — the crew" agree on the first
            endings.update(set().union(*(_closing_openings(line, question) for line in closing)))
        for question, fact in _SAMPLE_LEADS:
            lead = self._write_lead(question, fact, [], voice)
            if acceptable_framing(lead, question):
                greetings[lead] += 1
        ending, count = max(endings.items(), key=lambda item: (item[1], len(item[0]))) if endings else ("", 0)
        ending = ending if count >= 2 else ""  # greetings vary by design; a closing line must agree
        openers = [line for line, _ in greetings.most_common()  # most common first, then first seen
                   if not (ending and ending.startswith(line.rstrip(",.!")))]
        greeting = openers[0] if openers else ""  # a reply that opened with its sign-off is no greeting
        log.info("voice frame learned: greeting %r, sign-off %r (of %d sample replies and %d lead-ins)", greeting,
                 ending, len(_SAMPLE_REPLIES), len(_SAMPLE_LEADS))
        return greeting, ending


_DEBRIS = re.compile(r"^\s*(?:#|\||```|>|\d+[.)]|[-*+]\s)|\[\d+\]|\*\*|`|https?://|\bQuestion\b|\bAnswer\b|\bDocumentation\b",
                     re.IGNORECASE)
_STATEMENT_WORDS = re.compile(r"(?<![\w-])(?:yes|no|not|never|cannot|can't|don't|doesn't|isn't|won't|only|always|must|"
                              r"free|paid|cost|costs|price|limit|maximum|minimum|one|two|three|four|five|six|seven|"
                              r"eight|nine|ten|twice|once)(?![\w-])|n't\b", re.IGNORECASE)
_FRAMING_VOCABULARY = content_terms("""here how what steps step follow following below answer question docs documentation
page pages guide section help helps glad happy great good news short sure thing quick look looks let take
hope hoping luck best regards cheers thanks thank welcome aboard hello there team crew folks friend you're
contact contacting reaching out support customer dear day asking writing
we've got covered scoop lowdown details detail info information right way simple easy""")


def _closing_openings(line: str, question: str) -> set[str]:
    """The line and each opening of it that ends a sentence and may close an answer:
    "Smooth sailing! — the crew" gives itself and "Smooth sailing!"."""
    cuts = {line[:m.end()].strip() for m in re.finditer(r"[.!?](?=\s)", line)}
    return {line} | {cut for cut in cuts if acceptable_framing(cut, question, free_words=8)}


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
