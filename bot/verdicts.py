"""Whether the docs answer a yes/no question with "Yes" or "No": only where one sentence
states it about the thing asked.

A limitation somewhere in a passage is no answer. "This function may not be supported
depending on the model", "you will hear no sound if you select Bluetooth", "if the server
does not support it, the push will fail" all hold a negation, and none of them denies what a
user asked. So a sentence gives a verdict only when

- its main clause (without the conditions, reasons, parentheses and relative clauses around
  it) speaks of the question's own subject and action: the question's words, weighted by how
  rare they are among the passages' pieces, are found in it;
- any condition it states is the question's own condition ("when you stop a DB instance ...");
  a sentence true only under a condition the user did not ask about states nothing about the
  question;
- it states it outright: no hedge (may, might, depending on, usually), no warning
  (an imperative "Do not ..."), no restriction to some subjects ("only ..."), not a question.

The main clause's polarity is the verdict: negated ("is not supported", "cannot be played",
"unsupported") means No, affirmed means Yes. The words that mark these (subordinating
conjunctions, negators, modal hedges) are English grammar's closed classes, not the wording of
any one set of docs. When the best sentences disagree, or none qualifies, there is no verdict.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.grounding import content_terms, identifiers, stem, subject_terms
from bot.passage_units import ITEM, SENTENCE, Unit, split_sentences

# Subordinating conjunctions that put a condition on what the main clause says.
_CONDITION = r"if|unless|when|whenever|once|provided(?: that)?|as long as|in case|even if|only if|except when|whether"
# ... and those that give a reason or a contrast: dropped from the clause, no bar to a verdict.
_ASIDE = r"because|since|although|though|even though|so that|whereas|while"
_LEADING = re.compile(rf"^\s*(?:{_CONDITION}|{_ASIDE})\b", re.IGNORECASE)
_TRAILING = re.compile(rf"(?:,\s*|\s+)(?P<word>{_CONDITION}|{_ASIDE})\b", re.IGNORECASE)
_COORDINATE = re.compile(r";\s+|,\s+(?:but|however|whereas|while|yet)\s+|\s+but\s+", re.IGNORECASE)
_RELATIVE = re.compile(r",\s*(?:which|who)\b", re.IGNORECASE)
_PARENTHESES = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_RELATIVE_NEGATION = re.compile(
    r"\b(?:that|which|who|whose)\s+(?:\w+\s+)?(?:is|are|was|were|do|does|did|has|have|can|will|would|could|should)"
    r"(?:\s+not|n't)\b[^,;]*", re.IGNORECASE)
_NEGATOR = re.compile(r"\b(?:not|no|never|cannot|none|nothing|neither|nor|nowhere)\b|n't\b", re.IGNORECASE)
_NOT_A_NEGATION = re.compile(r"\b(?:not only|not just|no matter|no longer needed|not to mention)\b", re.IGNORECASE)
_HEDGE = re.compile(r"\b(?:may|might|depending|depends|usually|generally|often|sometimes|typically|possibly|"
                    r"probably|perhaps|likely|unlikely|some models|not necessarily|only)\b", re.IGNORECASE)
_WARNING = re.compile(r"^\W*(?:do not|don't|never|avoid|beware|be careful|make sure|warning|caution)\b",
                      re.IGNORECASE)
_NEGATING_PREFIX = re.compile(r"\b(?:un|in|im|non|dis)-?([a-z]{4,})\b")
_PRIVATIVE = re.compile(r"\bwithout\b", re.IGNORECASE)


@dataclass(frozen=True)
class VerdictSettings:
    min_coverage: float = 0.6  # share of the question's (rarity-weighted) words the sentence must hold
    context_weight: float = 0.5  # a word found only around the sentence (its paragraph, its page's heading) counts this much
    shared_condition: float = 0.6  # share of a sentence's condition words the question must hold for it to apply
    conflict_margin: float = 0.1  # sentences within this coverage of the best that say the opposite: no verdict


@dataclass(frozen=True)
class Verdict:
    answer: str  # "Yes" or "No"
    unit: Unit  # the piece (sentence or list item) that holds the sentence stating it
    sentence: str  # the sentence itself, verbatim
    coverage: float


@dataclass(frozen=True)
class Clause:
    main: str  # what the sentence asserts
    condition: str  # what it asserts it under ("" when unconditional)


def clauses(sentence: str) -> list[Clause]:
    """The assertions of a sentence, each with the condition it holds under. Coordinate
    clauses ("X is kept; Y is deleted", "X works, but Y does not"), reasons and concessions
    ("since FTP does not encrypt ..."), parentheses and non-restrictive relative clauses
    (", which is not installed by default") each assert something of their own."""
    text = sentence.replace("\u2019", "'")
    parts = [m.group(0)[1:-1] for m in _PARENTHESES.finditer(text)]
    parts.insert(0, _PARENTHESES.sub(" ", text))
    out = []
    for part in (p for whole in parts for p in _COORDINATE.split(whole)):
        out.extend(_clauses_of(part))
    return [c for c in out if c.main]


def _clauses_of(part: str) -> list[Clause]:
    condition, asides = "", []
    if _LEADING.match(part):
        head, comma, rest = part.partition(",")
        word = _LEADING.match(part).group(0).strip().lower()
        if not comma:
            return [Clause(part, part)]  # no comma marks where the condition ends: all of it is conditional
        if re.fullmatch(_CONDITION, word):
            condition = head
        else:
            asides.append(head[len(word):])
        part = rest
    relative = _RELATIVE.search(part)
    if relative:
        asides.append(part[relative.end():])
        part = part[:relative.start()]
    trailing = _TRAILING.search(part)
    if trailing and trailing.start() > 0:
        word, head, tail = trailing.group("word"), part[:trailing.start()], part[trailing.end():]
        resumed = tail.find(",") if part[trailing.start()] == "," else -1
        if resumed >= 0 and len(tail[resumed + 1:].split()) >= 3:
            # "By default, if SLAAC is on, the kernel finds ...": the main clause resumes after the condition
            sub, part = tail[:resumed], f"{head}, {tail[resumed + 1:]}"
        else:
            sub, part = tail, head
        if re.fullmatch(_CONDITION, word.lower()):
            condition = f"{condition} {word} {sub}".strip()
        else:
            asides.append(sub)
    out = [Clause(part.strip(" ,.;:"), condition.strip(" ,.;:"))]
    return out + [Clause(a.strip(" ,.;:"), condition.strip(" ,.;:")) for a in asides if a.strip()]


def is_negated(clause: str) -> bool:
    """The clause itself denies: a negator outside a relative clause ("files that are not
    tracked are kept" affirms), or a word negated by its prefix ("unsupported")."""
    text = _NOT_A_NEGATION.sub(" ", _RELATIVE_NEGATION.sub(" ", clause))
    return bool(_NEGATOR.search(text))


def _negated_terms(text: str) -> set[str]:
    """Stems of words negated by a prefix: "unsupported" holds "supported", negated."""
    return {stem(m.group(1)) for m in _NEGATING_PREFIX.finditer(text.lower())}


class VerdictFinder:
    def __init__(self, settings: VerdictSettings | None = None) -> None:
        self.settings = settings or VerdictSettings()

    def find(self, question: str, units: Sequence[Unit], context: dict[int, str] | None = None) -> Verdict | None:
        """The verdict one piece of `units` states about the question, or None. `context`
        maps a passage number to its location (page title and heading), which may name the
        subject a sentence speaks of without repeating it."""
        asked_condition, asked = _split_question(question)
        asked_terms = subject_terms(asked) | subject_terms(asked_condition)
        if not asked_terms:
            return None
        pieces = [u for u in units if u.kind in (SENTENCE, ITEM)]
        weights = _rarity(asked_terms, [content_terms(u.text) for u in pieces])
        total = sum(weights.values())
        asked_ids = {i.lower() for i in identifiers(question)}
        question_terms = content_terms(question)
        found: list[tuple[float, str, Unit, str]] = []
        for unit in pieces:
            around = content_terms(" ".join([(context or {}).get(unit.passage, "")] +
                                            [u.text for u in units if u.passage == unit.passage and u.block == unit.block]))
            for sentence in split_sentences(unit.text):
                judged = self._judge(sentence, question, question_terms, asked_ids, weights, total, around)
                if judged is not None:
                    found.append((judged[0], judged[1], unit, sentence))
        if not found:
            return None
        found.sort(key=lambda f: -f[0])
        best = found[0]
        if any(f[1] != best[1] and f[0] >= best[0] - self.settings.conflict_margin for f in found[1:]):
            return None  # the docs say both within a hair: not for us to pick
        return Verdict(best[1], best[2], best[3], round(best[0], 3))

    def _judge(self, sentence: str, question: str, question_terms: set[str], asked_ids: set[str],
               weights: dict[str, float], total: float, around: set[str]) -> tuple[float, str] | None:
        """(coverage, "Yes"/"No") when the sentence states a verdict on the question."""
        if sentence.rstrip().endswith("?") or _WARNING.match(sentence) or total <= 0:
            return None
        if any(i not in sentence.lower() for i in asked_ids):
            return None  # a verdict about a value, a command or a name must quote it
        if _PRIVATIVE.search(question) and not _PRIVATIVE.search(sentence):
            return None  # "can I ... without X?" is answered only by what is said "without X"
        best: tuple[float, str] | None = None
        for clause in clauses(sentence):
            if not clause.main or _HEDGE.search(clause.main):
                continue
            condition_terms = content_terms(clause.condition)
            if condition_terms and len(condition_terms & question_terms) < self.settings.shared_condition * len(condition_terms):
                continue  # true under a condition the question does not set
            stated = content_terms(clause.main) | (content_terms(clause.condition) if clause.condition else set())
            negated = _negated_terms(clause.main)
            stated |= negated
            coverage = sum(w for t, w in weights.items() if t in stated)
            coverage += self.settings.context_weight * sum(w for t, w in weights.items() if t not in stated and t in around)
            coverage /= total
            if coverage < self.settings.min_coverage:
                continue
            answer = "No" if is_negated(clause.main) or (negated & set(weights)) else "Yes"
            if best is None or coverage > best[0]:
                best = (coverage, answer)
        return best


def _split_question(question: str) -> tuple[str, str]:
    """(the question's own condition, what it asks): "If I reinstall, will I lose my data?"
    asks about losing data under a reinstall."""
    text = question.strip()
    found = clauses(text.rstrip("?"))
    condition = " ".join(c.condition for c in found)
    asked = " ".join(c.main for c in found)
    return condition, asked or text


def _rarity(terms: set[str], pieces: list[set[str]]) -> dict[str, float]:
    """How telling each asked word is among these pieces: a word most pieces share names
    the page's topic, not the thing asked."""
    n = max(len(pieces), 1)
    return {t: math.log(1 + n / (1 + sum(t in p for p in pieces))) + 0.1 for t in terms}
