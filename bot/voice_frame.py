"""A voice's frame, learned from the team's own example replies: the greeting their replies
open with and the sign-off they close with, kept exactly as the team writes them (emoji,
names, punctuation, line breaks), and the words they use around their facts.

No word list of ours decides what a greeting is: a frame is the leading or trailing block of
lines that a clear share of the replies share, compared after normalising whitespace only.
Where no whole line is shared, the first sentence of the first lines and the closing
sentences of the last lines are compared the same way (a greeting or sign-off written on the
same line as the facts). What the replies share word for word across many different
questions cannot be a fact about any one of them; a voice whose replies open (or close)
straight with the facts gets no greeting (or sign-off), and the frame says why.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bot.grounding import content_terms

MAX_BLOCK_LINES = 6  # a signature block: "Best regards,\nJane\nAcme Support\nacme.example"
SIGN_OFF_SHARE = 0.3  # a sign-off closes at least this share of the replies
GREETING_SHARE = 0.5  # the greetings (their variants together) open at least this share
VARIANT_SHARE = 0.05  # one greeting variant opens at least this share (and MIN_REPLIES replies)
EXTEND_SHARE = 0.6  # a block grows by a line while this share of its replies carry the longer one
MIN_REPLIES = 3  # fewer replies sharing a line is chance, not a voice
VOCABULARY_SHARE = 0.05  # a word is framing when the replies' unquoted sentences reuse it this often
_CITATION = re.compile(r"\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")
_VERDICT = re.compile(r"^\W*(?:yes|no)\b\W*(?:,|$)", re.IGNORECASE)  # "Yes." "No, ...": a fact, never a frame
_FACTUAL = re.compile(r"\[\d{1,3}\]|`|\*\*|\d|https?://")
_SENTENCE = re.compile(r"(?<=[.!?:])\s+")
# A line's first sentence (or salutation) with any emoji after it ("Hey there! 👋"), and each
# place a sentence ends inside a line (what follows may be a sign-off)
# (each run of symbols is one piece: "!!!" or "🎉🎉" can be split only one way, so a long run
# costs linear time, not a search over every split of it)
_FIRST_SENTENCE = re.compile(r"^.*?[.!?,…][^\w\s\[]*(?:\s+[^\w\s\[]+)*(?=\s+\S)")
_SENTENCE_END = re.compile(r"[.!?…][^\w\s\[]*(?:\s+[^\w\s\[]+)*(?=\s+\S)")


def squash(line: str) -> str:
    """A line as frames are compared: whitespace normalised, nothing else."""
    return " ".join(line.split())


@dataclass(frozen=True)
class VoiceFrame:
    """What a voice puts around the facts, learned from its example replies."""

    greetings: tuple[str, ...] = ()  # the shared openings, most common first, exactly as written
    sign_off: str = ""  # the shared closing block, exactly as written
    vocabulary: frozenset[str] = frozenset()  # content terms the team frames its facts with
    replies: int = 0  # how many example replies it was learned from
    greeted: float = 0.0  # share of those replies opening with one of the greetings
    signed: float = 0.0  # share closing with the sign-off
    reasons: tuple[str, ...] = ()  # why no greeting / sign-off was found

    @property
    def greeting(self) -> str:
        return self.greetings[0] if self.greetings else ""

    def texts(self) -> list[str]:
        """The team's own framing text: names and emoji here are voice, not invented facts."""
        return [*self.greetings, self.sign_off] if self.sign_off else list(self.greetings)

    def split_greeting(self, line: str) -> tuple[str, str]:
        """(the greeting `line` opens with, as the team writes it, or ""; the rest of the line):
        a model that writes "Hiya! 🙌✨ Here's how:" picked the greeting "Hiya! 🙌✨"."""
        squashed = squash(line)
        for greeting in sorted(self.greetings, key=len, reverse=True):
            first = squash(greeting.splitlines()[0])
            if squashed == first or squashed.startswith(first + " "):
                return greeting, squashed[len(first):].strip()
        return "", squashed

    def opens(self, answer: str) -> bool:
        """Whether `answer` opens with one of the greetings, exactly as the team writes it."""
        return any(answer == g or answer.startswith(g + "\n") for g in self.greetings)

    def closes(self, answer: str) -> bool:
        """Whether `answer` closes with the whole sign-off, exactly as the team writes it."""
        return bool(self.sign_off) and (answer == self.sign_off or answer.endswith("\n" + self.sign_off))

    def unsigned(self, answer: str) -> str:
        """`answer` without the sign-off: where its own ending is judged (a sign-off may end on
        an emoji or a name, a sentence of the answer may not)."""
        return answer[: -len(self.sign_off)].rstrip() if self.closes(answer) else answer

    def summary(self) -> str:
        """One line for `voice train` and `voice list`."""
        if not self.greetings and not self.sign_off:
            return "frame: none found, because " + "; ".join(self.reasons)
        parts = []
        if self.greetings:
            more = f" (+{len(self.greetings) - 1} more: {', '.join(map(repr, self.greetings[1:4]))}" \
                   f"{', …' if len(self.greetings) > 4 else ''})" if len(self.greetings) > 1 else ""
            parts.append(f"greeting: {self.greeting!r}{more} in {self.greeted:.0%} of {self.replies} replies")
        else:
            parts.append(f"greeting: none ({self.reasons[0]})")
        if self.sign_off:
            parts.append(f"sign-off: {self.sign_off!r} in {self.signed:.0%}")
        else:
            parts.append(f"sign-off: none ({self.reasons[-1]})")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"greetings": list(self.greetings), "sign_off": self.sign_off, "vocabulary": sorted(self.vocabulary),
                "replies": self.replies, "greeted": round(self.greeted, 4), "signed": round(self.signed, 4),
                "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, data: dict) -> VoiceFrame:
        return cls(tuple(data.get("greetings", ())), data.get("sign_off", ""), frozenset(data.get("vocabulary", ())),
                   int(data.get("replies", 0)), float(data.get("greeted", 0.0)), float(data.get("signed", 0.0)),
                   tuple(data.get("reasons", ())))


@dataclass(frozen=True)
class _Reply:
    """A reply's non-blank lines, squashed (to compare) and as written (to keep)."""

    keys: tuple[str, ...]
    raw: tuple[str, ...]  # each kept line with the blank lines before it, as written

    @classmethod
    def of(cls, text: str) -> _Reply:
        keys, raw, pending = [], [], ""
        for line in text.strip().splitlines():
            if not line.strip():
                pending += "\n"
                continue
            keys.append(squash(line))
            raw.append(pending + line.rstrip())
            pending = ""
        return cls(tuple(keys), tuple(raw))

    def head(self, n: int) -> str:
        return "\n".join(self.raw[:n]).strip("\n")

    def tail(self, n: int) -> str:
        return "\n".join(self.raw[-n:]).strip("\n")


def learn_frame(replies: Sequence[str]) -> VoiceFrame:
    """The frame the replies share. See the module docstring for the rule; every threshold
    is a share of the replies, so it needs no tuning per voice."""
    parsed = [_Reply.of(r) for r in replies if r.strip()]
    n = len(parsed)
    if n < MIN_REPLIES:
        return VoiceFrame(replies=n, reasons=(f"only {n} example replies (a frame needs {MIN_REPLIES})",))
    reasons: list[str] = []
    sign_off, signed_by = _shared_ending(parsed) or _shared_inline_ending(parsed)
    if not sign_off:
        reasons.append("no closing line is shared by "
                       f"{SIGN_OFF_SHARE:.0%} of the {n} replies (they end with their facts)")
    greetings, greeted_by = _shared_openings(parsed, sign_off)
    if not greetings:
        greetings, greeted_by = _shared_inline_openings(parsed)
    if not greetings:
        reasons.insert(0, f"no opening line is shared by {GREETING_SHARE:.0%} of the {n} replies "
                          f"(they open with their facts)")
    vocabulary = _framing_vocabulary(parsed, greetings, sign_off)
    return VoiceFrame(tuple(greetings), sign_off, frozenset(vocabulary), n, round(greeted_by / n, 4), round(signed_by / n, 4),
                      tuple(reasons))


def _need(n: int, share: float) -> int:
    return max(MIN_REPLIES, math.ceil(share * n))


def _framing_line(key: str) -> bool:
    """A line that may be part of a frame: it cites nothing and gives no verdict."""
    return not _CITATION.search(key) and not _VERDICT.match(key)


def _shared_inline_ending(parsed: list[_Reply]) -> tuple[str, int]:
    """Where no closing line is shared: the closing sentences most last lines share
    ("Click Save [1]. Happy watching! — the Crew"), or ("", 0)."""
    tails: Counter[str] = Counter()
    for reply in parsed:
        last = reply.keys[-1]
        tails.update({last[m.end():].strip() for m in _SENTENCE_END.finditer(last)})
    shared = [(t, c) for t, c in tails.items() if c >= _need(len(parsed), SIGN_OFF_SHARE) and _framing_line(t)]
    return max(shared, key=lambda item: (item[1], len(item[0]))) if shared else ("", 0)


def _shared_inline_openings(parsed: list[_Reply]) -> tuple[list[str], int]:
    """Where no opening line is shared: the first sentences a clear share of first lines
    open with ("Hey there! 👋 Here's how to ..."), most common first, or ([], 0)."""
    heads = Counter(m.group(0) for m in (_FIRST_SENTENCE.search(r.keys[0]) for r in parsed) if m)
    n = len(parsed)
    variants = [(line, count) for line, count in heads.most_common()
                if count >= _need(n, VARIANT_SHARE) and _framing_line(line)]
    total = sum(count for _, count in variants)
    return ([line for line, _ in variants], total) if total >= _need(n, GREETING_SHARE) else ([], 0)


def _shared_ending(parsed: list[_Reply]) -> tuple[str, int] | None:
    """The closing block most replies carry, grown upwards line by line while most of the
    replies that carry it carry the longer block too; ("", 0) when none is shared enough."""
    n = len(parsed)
    last = Counter(r.keys[-1] for r in parsed if len(r.keys) > 1 and _framing_line(r.keys[-1]))
    if not last:
        return None
    top, support = max(last.items(), key=lambda item: (item[1], len(item[0])))
    if support < _need(n, SIGN_OFF_SHARE):
        return None
    block = (top,)
    while len(block) < MAX_BLOCK_LINES:
        carriers = [r for r in parsed if len(r.keys) > len(block) + 1 and r.keys[-len(block):] == block]
        longer = Counter(r.keys[-len(block) - 1] for r in carriers if _framing_line(r.keys[-len(block) - 1]))
        if not longer:
            break
        line, count = max(longer.items(), key=lambda item: (item[1], len(item[0])))
        if count < max(_need(n, SIGN_OFF_SHARE), EXTEND_SHARE * support):
            break
        block, support = (line, *block), count
    example = next(r for r in parsed if len(r.keys) > len(block) and r.keys[-len(block):] == block)
    return example.tail(len(block)), support


def _shared_openings(parsed: list[_Reply], sign_off: str) -> tuple[list[str], int]:
    """The opening blocks a clear share of replies start with (a voice may rotate several
    greetings), most common first; none unless together they open most replies."""
    n = len(parsed)
    closing = squash(sign_off.splitlines()[0]) if sign_off else None
    first = Counter(r.keys[0] for r in parsed if len(r.keys) > 1 and _framing_line(r.keys[0]) and r.keys[0] != closing)
    variants = [(line, count) for line, count in first.most_common() if count >= _need(n, VARIANT_SHARE)]
    total = sum(count for _, count in variants)
    if total < _need(n, GREETING_SHARE):
        return [], 0
    greetings = []
    for line, count in variants:
        block, support = (line,), count
        while len(block) < MAX_BLOCK_LINES:
            carriers = [r for r in parsed if len(r.keys) > len(block) + 1 and r.keys[:len(block)] == block]
            longer = Counter(r.keys[len(block)] for r in carriers if _framing_line(r.keys[len(block)]))
            if not longer:
                break
            next_line, next_count = max(longer.items(), key=lambda item: (item[1], len(item[0])))
            if next_count < max(_need(n, VARIANT_SHARE), EXTEND_SHARE * support) or next_line == closing:
                break
            block, support = (*block, next_line), next_count
        example = next(r for r in parsed if r.keys[:len(block)] == block)
        greetings.append(example.head(len(block)))
    return greetings, total


def _framing_vocabulary(parsed: list[_Reply], greetings: list[str], sign_off: str) -> set[str]:
    """The words the team frames its facts with: those of its greetings and sign-off, and
    the words its unquoted sentences (no citation, code, bold or number) reuse across
    replies. Question-specific words come and go; framing words come back."""
    vocabulary = set().union(*(content_terms(text) for text in [*greetings, sign_off]))
    frame_keys = {squash(line) for text in [*greetings, sign_off] for line in text.splitlines()}
    seen: Counter[str] = Counter()
    for reply in parsed:
        terms: set[str] = set()
        for key in reply.keys:
            if key in frame_keys:
                continue
            for sentence in _SENTENCE.split(key):
                if not _FACTUAL.search(sentence):
                    terms |= content_terms(sentence)
        seen.update(terms)
    need = _need(len(parsed), VOCABULARY_SHARE)
    return vocabulary | {term for term, count in seen.items() if count >= need}
