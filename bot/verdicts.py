"""Whether the docs answer a yes/no question with "Yes" or "No": only where one sentence
states it about the thing asked.

A limitation somewhere in a passage is no answer. "This function may not be supported
depending on the model", "you will hear no sound if you select Bluetooth", "if the server
does not support it, the push will fail" all hold a negation, and none of them denies what a
user asked. So a sentence gives a verdict only when

- one of its clauses (apart from the conditions, reasons, parentheses and relative clauses
  around it) speaks of the question's own subject and action: the question's words, weighted
  by how rare they are among the passages' pieces, are found in it in its own words, and
  (with the bundled embedder) it is close to the question in meaning;
- any condition it states is the question's own condition ("when you stop a DB instance ...");
  a sentence true only under a condition the user did not ask about states nothing about the
  question;
- it states it outright: no hedge (may, might, depending on, usually), no warning
  (an imperative "Do not ..."), no restriction to some subjects ("only ..."), not a question,
  not a cross-reference ("For details, see ...");
- it says what was asked of the subject, not something else about it: the participle asked
  ("is X *installed*"), the restriction asked ("the *only* way"), the names asked ("*Lambda*"),
  and no exception of what was asked ("except on Windows"); and it says it in its predicate, not
  only in a phrase describing its subject ("a raw string *ending with* a backslash will ...") or
  in one saying what is absent ("*without the need to change* BIOS settings"), whose negator
  denies nothing else ("can be upgraded *with no need to reboot*" affirms the upgrade). A "no"
  before a noun denies that thing ("there is *no limit* on the projects you can create"), and a
  fronted "Unlike X," names what the clause is not about.

A clause with no subject of its own (a list item "- Doesn't support elastic volumes." under
"The following are limitations of magnetic storage:") or with a pronoun for one ("Likewise, it
does not ...") speaks of what its list's introduction or its heading names.

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

from bot.grounding import STOPWORDS, content_terms, identifiers, stem, subject_terms
from bot.passage_units import ITEM, SENTENCE, Unit, split_sentences
from bot.protocols import TextSimilarity

# Subordinating conjunctions that put a condition on what the main clause says.
_CONDITION = (r"if|unless|when|whenever|once|provided(?: that)?|as long as|in case|even if|only if|except when|whether"
              r"|otherwise")
# ... and those that give a reason or a contrast: an assertion of their own, no bar to a verdict.
_ASIDE = r"because|since|although|though|even though|so that|whereas|while"
# A sentence opening with a purpose ("To find X, use Y") says what holds for that purpose: its condition.
_PURPOSE = r"to(?=\s+[a-z]{2,}\b)"
# A sentence opening with a time frame ("Before this syntax was introduced in Python 2.5, ...") says what held
# then: a condition too.
_TIME = r"before|after|until"
_LEADING = re.compile(rf"^\s*(?:{_CONDITION}|{_ASIDE}|{_TIME}|{_PURPOSE})\b", re.IGNORECASE)
_TRAILING = re.compile(rf"(?:,\s*|\s+)(?P<word>{_CONDITION}|{_ASIDE})\b", re.IGNORECASE)
# (", and there is no need to ..." is a clause of its own; a pronoun after ", and" is left with the clause that
# names what it refers to)
_COORDINATE = re.compile(r";\s+|,\s+(?:but|however|whereas|while|yet)\s+|\s+but\s+"
                         r"|,\s+(?:and|so)\s+(?=there\s+(?:is|are)\b)", re.IGNORECASE)
_RELATIVE = re.compile(r",\s*(?:which|who)\b", re.IGNORECASE)
_LINK = re.compile(r"\[([^\[\]]+)\]\([^()\s]+\)")  # a Markdown link reads as its text
_PARENTHESES = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_RELATIVE_NEGATION = re.compile(
    r"\b(?:that|which|who|whose)\s+(?:is|are|was|were|do|does|did|has|have|can|will|would|could|should)"
    r"(?:\s+not|n't)\b", re.IGNORECASE)
_NEGATOR = re.compile(r"\b(?:not|no|never|cannot|none|nothing|neither|nor|nowhere)\b|n't\b", re.IGNORECASE)
_NOT_A_NEGATION = re.compile(r"\b(?:not only|not just|no matter|not to mention)\b", re.IGNORECASE)
# (a word of its own: "Build-Depends" names a field, it hedges nothing). "Would" says what holds in a case
# imagined ("we would still like to know about all commercial use"), not what is so.
_HEDGE = re.compile(r"(?<![\w-])(?:may|might|depending|depends|usually|generally|often|sometimes|typically|possibly|"
                    r"probably|perhaps|likely|unlikely|would(?:n't)?|some models|not necessarily|not all|not every|"
                    r"only)(?![\w-])", re.IGNORECASE)
_WARNING = re.compile(r"^\W*(?:do not|don't|never|avoid|beware|be careful|make sure)\b",
                      re.IGNORECASE)
# A prefix negates what a clause says only as its predicate, after a copula ("pushing into a bundle is
# unsupported"); in front of a noun it names a kind ("untracked files are stashed" affirms).
_NEGATING_PREFIX = re.compile(r"\b(?:is|are|was|were|be|been|remains?|stays?)\s+(?:\w+ly\s+)?"
                              r"(?:un|in|im|non|dis)-?([a-z]{4,})\b")
# Prepositions that open an adjunct (where, when, for what): "on Windows", "for the sync folder", "by default".
_ADJUNCT = re.compile(r"\s(?:on|in|at|for|from|with|into|onto|under|during|inside|within|via|through|across|"
                      r"between|by|after|before)\s", re.IGNORECASE)
# "Is there a discount for nonprofits?": what follows the noun there belongs to it, not to a setting.
_EXISTENTIAL = re.compile(r"^\W*(?:is|are|was|were|will|would)\s+there\b", re.IGNORECASE)
# ... nor is a phrase a trailing adjunct when the question's predicate comes after it
# ("Is pushing into a bundle supported?"); "to" before a determiner is a preposition ("to the next"), no infinitive
_PREDICATE_AFTER = re.compile(r"\b(?:\w{3,}ed|\w{3,}ing|that|which|who"
                              r"|to(?!\s+(?:the|a|an|my|your|our|its|their)\b))\b", re.IGNORECASE)
_PRIVATIVE = re.compile(r"\bwithout\b", re.IGNORECASE)
# What a clause says is absent, to its next stop: "without X", "with no X", "(there is) no need to X", and an
# absolute ", no X needed": the negator scopes that phrase, not what the clause asserts ("packages can be upgraded
# in place with no need to reboot" affirms the upgrade).
_ABSENT = re.compile(r"\b(?:without|with\s+no|(?:there\s+(?:is|are)\s+)?no\s+need\s+(?:to|for))\b([^,;:.()]*)"
                     r"|,\s*(no\s+[\w-]+(?:\s+[\w-]+)?\s+(?:needed|required|necessary))\b", re.IGNORECASE)
# "no" before a noun denies that thing ("no limit on projects", "no configuration is needed", "nothing needs to be
# installed"), not the clause's action: it is a "No" only to a question asking about that thing. "no longer" denies
# the verb.
_DETERMINER_NO = re.compile(r"\bno\s+((?!longer\b|more\b|matter\b)[a-z][\w-]*(?:\s+[a-z][\w-]*)?)"
                            r"|\b(nothing|nobody|none|no one)\b", re.IGNORECASE)
# "Unlike the desktop app, the mobile app can't ...": what the fronted phrase names is what the clause is not about.
_CONTRAST = re.compile(r"^\W*(?:unlike|in contrast to|as opposed to|contrary to)\s+([^,]+),", re.IGNORECASE)
# The everyday verbs that grounding's word lists drop as carrying no subject ("use", "keep", "need"): in a
# yes/no question they are the asked action, and a clause about the same subject with another verb states
# something else ("git describe will ignore lightweight tags" does not answer "does git describe use them?";
# "a rebase will drop merge commits" does not answer "does it keep them?").
_ACTION_WORDS = frozenset("""
add added ask asked come comes get gets got happen happens help keep keeps kept know knows lose loses let lets
make makes need needs pick put run runs said say says see sees set sets show shows take takes tell tells try use
uses using want wants work works mean means look looks wait
""".split())
# A clause whose subject refers back: a personal or demonstrative pronoun, or a demonstrative before a noun,
# after a fronted adverb at most ("Likewise, it does not have ...", "Finally, it can ...", "This project is not
# available ...").
_PRONOUN_SUBJECT = re.compile(r"^\W*(?:\w+ly,?\s+|\w+,\s+)?(?:it|they|this|that|these|those|such)\b", re.IGNORECASE)
# A passive participle asked of the subject ("is grep-status installed by default?", "are new modules
# signed?") is the asked action: a clause without it speaks of something else ("this example uses the
# grep-status command"). Only its own word family counts, never a word merely close in meaning: an
# embedder rates "enabled" and "disabled" 0.77 alike.
_PARTICIPLE = re.compile(r"\b(?!(?:embed|hundred|kindred)\b)[a-z]{2,}[^e\W]ed\b")  # not "need", "speed"
# A restriction or universal the question asks about ("the only way", "always", "every user"): a "Yes"
# must state it, or it affirms something weaker than what was asked.
_RESTRICTION = re.compile(r"\b(?:only|always|every|all|each|everything|everyone|anywhere|exclusively)\b",
                          re.IGNORECASE)
# A sentence sending the reader elsewhere ("For details, see [Lambda functions as a target](...)",
# "Refer to the Security Guide.") asserts nothing itself: the page it names may. A subject or an
# auxiliary before the verb ("you can see the list", "to see the status") makes it a statement again.
_POINTER = re.compile(r"(?:^\W*(?:\*\*)?(?:note|tip)?:?(?:\*\*)?\s*|(?P<before>[\w']+)(?P<sep>\W{0,2})\s+)"
                      r"(?P<verb>[Ss]ee|[Rr]efer to)\s+(?:also\b|(?P<link>\[)|[\"\u201c]|[A-Z]|the\b)", re.IGNORECASE)
_SAYER = frozenset("i you we they he she it one users user who which that can could will would may might should must "
                   "to not cannot can't don't doesn't won't didn't isn't aren't you'll we'll also easily".split())
# A list item opening with its verb ("- Doesn't support elastic volumes.") has the subject its list's
# introduction names: auxiliaries and modals are a closed class.
_SUBJECTLESS = re.compile(r"^\W*(?:does|doesn't|do|don't|did|didn't|is|isn't|are|aren't|was|wasn't|were|weren't|"
                          r"has|hasn't|have|haven't|can|cannot|can't|will|won't|must|should|may|might|could|"
                          r"would|not)\b", re.IGNORECASE)
# An exception a sentence makes ("supports HTTP/3 (except on Windows)"): a "Yes" does not hold for what it names.
_EXCEPTION = re.compile(r"\b(?:except|excluding|other than|apart from|but not)\b(?P<rest>[^.;)\]]*)", re.IGNORECASE)
_CORRECTIVE = re.compile(r"^\W*(?:rather|instead)\b", re.IGNORECASE)
# Auxiliaries and modals: in a clause, the first one is where its predicate starts (a closed class).
_AUXILIARY = frozenset("""
will won't can cannot can't is isn't are aren't was wasn't were weren't has hasn't have haven't does doesn't do
don't did didn't must should may might would could
""".split())
_WORDS = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")


@dataclass(frozen=True)
class VerdictSettings:
    min_coverage: float = 0.6  # share of the question's (rarity-weighted) words a clause must hold ...
    min_similarity: float = 0.5  # ... and (with a similarity model) be at least this close to it in meaning;
    near_coverage: float = 0.4  # a clause holding fewer of the words (it says the same in other words: "additional
    near_similarity: float = 0.7  # space" for "extra space") must be this close in meaning
    shared_condition: float = 0.6  # share of a sentence's condition words the question must hold for it to apply
    min_own: float = 0.5  # share of the asked subject and action a clause must hold in its own words
    action_similarity: float = 0.7  # an asked everyday verb ("need") said in other words: a word this close to it
    max_judged: int = 8  # clauses compared in meaning, the best-covered first (bounds the embedding time)
    heading_weight: float = 0.5  # an asked word found only in the section's heading counts this much
    conflict_margin: float = 0.1  # a clause scoring within this of the best that says the opposite: no verdict


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
    text = _LINK.sub(r"\1", sentence.replace("\u2019", "'"))
    text = _PARENTHESES.sub(lambda m: m.group(0)[1:-1] if _is_appositive(m.group(0)[1:-1]) else m.group(0), text)
    parts = [m.group(0)[1:-1] for m in _PARENTHESES.finditer(text)]
    parts.insert(0, _PARENTHESES.sub(" ", text))
    out = []
    for part in (p for whole in parts for p in _COORDINATE.split(whole)):
        out.extend(_clauses_of(part))
    return [c for c in out if c.main]


# Words opening a bracket that qualifies rather than names ("(except on Windows)", "(e.g. ext4)").
_BRACKET_OPENERS = frozenset("except excluding including unless e.g. i.e. see such like via per".split())


def _is_appositive(inner: str) -> bool:
    """A short name in brackets ("Server Name Indication (SNI)", "NTP (Network Time Protocol)")
    names what it follows: its words are that clause's own. A longer aside, or one that denies
    ("(not installed by default)"), asserts something of its own."""
    words = inner.split()
    return (0 < len(words) <= 4 and words[0].lower().strip(".,") not in STOPWORDS | _BRACKET_OPENERS
            and not is_negated(inner) and not _HEDGE.search(inner))


def _clauses_of(part: str) -> list[Clause]:
    condition, asides = "", []
    if _LEADING.match(part):
        head, comma, rest = part.partition(",")
        word = _LEADING.match(part).group(0).strip().lower()
        if not comma:
            return [Clause(part, part)]  # no comma marks where the condition ends: all of it is conditional
        if re.fullmatch(f"{_CONDITION}|{_TIME}|to", word):  # a purpose ("To find X, ...") limits it as a condition does
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
    """The clause itself denies: a negator ("is not supported", "cannot", "never"), not one
    that only limits a quantity ("not only")."""
    return bool(_NEGATOR.search(_NOT_A_NEGATION.sub(" ", clause)))


def _negated_terms(text: str) -> set[str]:
    """Stems of words negated by a prefix: "unsupported" holds "supported", negated."""
    return {stem(m.group(1)) for m in _NEGATING_PREFIX.finditer(text.lower())}


@dataclass(frozen=True)
class _Asked:
    """What a yes/no question asks, as the judge compares it with each clause."""
    text: str
    core: dict[str, float]  # the asked subject and action: word -> rarity weight
    setting: dict[str, float]  # the words of its own condition ("when I build a kernel"), which the page may set
    identifiers: set[str]  # values, commands, names: a verdict must quote them
    all_terms: set[str]
    actions: tuple[str, ...] = ()  # the asked everyday verbs ("use", "keep"): a clause must say them
    participles: tuple[str, ...] = ()  # the asked passive participles ("installed"): a clause must hold them
    restrictions: tuple[str, ...] = ()  # "only", "always", ...: a "Yes" must state them
    names: tuple[str, ...] = ()  # the asked things' proper names ("Lambda"): a clause must name them, or its scope
    topic: frozenset[str] = frozenset()  # asked words most pieces use (the page's topic): a clause needs another one
    complement: str | None = None  # what "is X ...?" asks X to be ("up to date"): a clause must say it
    words: frozenset[str] = frozenset()  # the question's own words as written, lower-cased
    described: frozenset[str] = frozenset()  # its restrictive relative clause's words ("mail *that fails DMARC*")
    compared: frozenset[str] = frozenset()  # what it compares its subject with ("... *like apt*?")


class VerdictFinder:
    def __init__(self, settings: VerdictSettings | None = None, similarity: TextSimilarity | None = None) -> None:
        self.settings = settings or VerdictSettings()
        self.similarity = similarity

    def find(self, question: str, units: Sequence[Unit], context: dict[int, str] | None = None) -> Verdict | None:
        """The verdict one piece of `units` states about the question, or None. `context`
        maps a passage number to its location (page title and heading), which may name the
        subject a sentence refers to as "it" or "this project"."""
        asked_condition, asked_text = _split_question(question)
        pieces = [u for u in units if u.kind in (SENTENCE, ITEM)]
        core_terms = subject_terms(asked_text)
        setting_terms = subject_terms(asked_condition) - core_terms
        if not core_terms or not pieces:
            return None
        piece_terms = [content_terms(u.text) for u in pieces]
        uses = {t: sum(t in p for p in piece_terms) for t in core_terms | setting_terms}  # pieces holding each word
        weights = _rarity(uses, len(pieces))
        asked = _Asked(question, {t: weights[t] for t in core_terms}, {t: weights[t] for t in setting_terms},
                       {i.lower() for i in identifiers(question)}, content_terms(question), asked_actions(asked_text),
                       asked_participles(asked_text),
                       asked_restrictions(asked_text), asked_names(asked_text),
                       _topic_words(core_terms, uses, len(pieces)), asked_complement(asked_text),
                       frozenset(_WORDS.findall(question.lower())), _described(question), _compared(question))
        candidates: list[tuple] = []  # (coverage, answer, unit, sentence, clause, coverage in its own words)
        for unit in pieces:
            # the piece a sentence belongs to (a list item) and its section's heading scope it
            heading = f"{(context or {}).get(unit.passage, '')} {_list_lead(unit, units)}".strip()
            around = f"{heading} {unit.text}"
            before = next((u.text for u in reversed(units) if u.passage == unit.passage and u.index < unit.index), "")
            previous = split_sentences(before)[-1:] if before else []
            for n, sentence in enumerate(split_sentences(unit.text)):
                candidates.extend((coverage, answer, unit, sentence, clause, own)
                                  for coverage, answer, clause, own in
                                  self._judge(sentence, asked, around, heading, " ".join(previous),
                                              item_start=unit.kind == ITEM and n == 0))
                previous = [sentence]
        stating = self._stating_the_predicate(asked, candidates)
        found = self._qualified(question, self._saying_the_action(asked, stating))
        if not found:
            return None
        found.sort(key=lambda f: -f[0])
        best = found[0]
        margin = self.settings.conflict_margin
        # every clause that means what was asked may contradict, also one that cannot give a verdict itself
        # (it says the asked action in other words: "that change will be present in the merged result"
        # for "will merging keep the change?" outweighs a "No" elsewhere)
        rivals = self._qualified(question, stating)
        if any(f[1] != best[1] and f[0] >= best[0] - margin and f[5] >= best[5] - margin for f in rivals):
            return None  # the docs say both, in their own words, within a hair: not for us to pick
        return Verdict(best[1], best[2], best[3], round(best[0], 3))

    def _stating_the_predicate(self, asked: _Asked, candidates: list[tuple]) -> list[tuple]:
        """The candidates whose clause holds each asked passive participle in its own word
        family (or negated by a prefix: "unsupported"), and each asked restriction where it says
        "Yes" (a clause with "only" is hedged and never says "Yes": an "only" question gets a "No"
        or nothing)."""
        kept = []
        for candidate in candidates:
            clause = candidate[4].lower()
            clause_stems = {stem(w) for w in _WORDS.findall(clause)} | _negated_terms(clause)
            if any(not _held(stem(p), clause_stems) for p in asked.participles):
                continue
            if candidate[1] == "Yes" and any(not re.search(rf"\b{r}\b", clause) for r in asked.restrictions):
                continue
            kept.append(candidate)
        return kept

    def _saying_the_action(self, asked: _Asked, candidates: list[tuple]) -> list[tuple]:
        """The candidates whose clause says each asked everyday verb: a word of its family, or
        (with a similarity model) a word very close to it in meaning ("compulsory" for
        "mandatory"); antonyms ("drop" for "keep") sit well below that bar."""
        if not asked.actions:
            return candidates
        kept = []
        for candidate in candidates:
            if candidate[1] == "No":
                kept.append(candidate)  # denied with another everyday verb ("doesn't work on" for "run on"): a No
                continue
            words = [w for w in _WORDS.findall(candidate[3].lower()) if w not in STOPWORDS or w in _ACTION_WORDS]
            stems = {stem(w) for w in words}
            missing = [a for a in asked.actions if not _held(stem(a), stems)]
            if missing and self.similarity is not None and words:
                missing = [a for a in missing
                           if max(self.similarity.similarities(a, words)) < self.settings.action_similarity]
            if not missing:
                kept.append(candidate)
        return kept

    def _qualified(self, question: str, candidates: list[tuple]) -> list[tuple]:
        """Clauses holding enough of the question's words; with a similarity model, those of
        them that also mean what was asked (a clause may hold every asked word and speak of
        something else: "the former enforces the policy" for "can a profile be loaded in
        complain mode?"), scored by how close they are in meaning."""
        floor = self.settings.min_coverage if self.similarity is None else self.settings.near_coverage
        held = sorted((c for c in candidates if c[0] >= floor), key=lambda c: -c[0])[: self.settings.max_judged]
        if self.similarity is None or not held:
            return held
        sims = self.similarity.similarities(question, [c[4] for c in held])
        return [(sim * c[0], *c[1:]) for c, sim in zip(held, sims)
                if sim >= (self.settings.min_similarity if c[0] >= self.settings.min_coverage
                           else self.settings.near_similarity)]

    def _judge(self, sentence: str, asked: _Asked, around: str, heading: str = "", previous: str = "",
               item_start: bool = False) -> list[tuple[float, str, str, float]]:
        """(coverage, "Yes"/"No", clause, coverage in its own words) for each clause of the sentence that states an
        answer to the question outright. The section's heading may name the asked subject
        ("Nonprofit discounts" over "nonprofits get 50% off"); the rest of the question's
        setting may also come from the piece around the sentence."""
        if sentence.rstrip().endswith("?") or _WARNING.match(sentence):
            return []
        pointer = _pointer_start(sentence)
        if pointer is not None:
            if re.match(r"^\W*(?:for|to)\b", sentence, re.IGNORECASE):
                return []  # "For details (on X), see ...": all of it is the pointer's purpose
            sentence = sentence[:pointer].rstrip(" ,;:(-\u2014")  # what it says before the pointer still stands
        if _PRIVATIVE.search(asked.text) and not _PRIVATIVE.search(sentence):
            return []  # "can I ... without X?" is answered only by what is said "without X"
        around_terms = content_terms(around)
        heading_terms = content_terms(heading)
        total = sum(asked.core.values()) + sum(asked.setting.values())
        sentence_terms = content_terms(sentence)
        excepted = {t for m in _EXCEPTION.finditer(sentence) for t in content_terms(m.group("rest"))}
        out = []
        for n, clause in enumerate(clauses(sentence) if re.search(r"\w", sentence) else []):
            if _HEDGE.search(clause.main) or _RELATIVE_NEGATION.search(clause.main):
                continue  # hedged, or a negation whose scope is a relative clause: says nothing outright
            if _CORRECTIVE.match(clause.main):
                continue  # "(it does not have X,) but rather Y": what holds instead, not the asked thing
            condition_terms = content_terms(clause.condition)
            shared = len(condition_terms & asked.all_terms)
            if condition_terms and shared < self.settings.shared_condition * len(condition_terms):
                continue  # true under a condition the question does not set
            # a list item opening with its verb ("- Doesn't support ...": only its first clause, not one split off
            # after "which"), or a pronoun subject, refers to what scopes the piece
            subjectless = item_start and n == 0 and _SUBJECTLESS.match(clause.main)
            pronoun = _PRONOUN_SUBJECT.match(clause.main)
            referring = subjectless or pronoun
            if any(i not in sentence.lower() and not (referring and i in heading.lower()) for i in asked.identifiers):
                continue  # a verdict about a value, a command or a name must quote it (or the subject it refers to)
            scope = f"{sentence} {heading} {previous if pronoun else ''}".lower()
            if any(not re.search(rf"\b{re.escape(name)}(?:s|es)?\b", scope) for name in asked.names):
                continue  # about another thing than the one the question names
            negated = _negated_terms(clause.main)
            if _subject_modifier(clause.main, asked.words, asked.described) & set(asked.core):
                continue  # what was asked only describes the clause's subject: it asserts something else of it
            # a condition the question shares is said (its words count); a purpose ("To avoid losing data ...")
            # only limits where the rest applies
            purpose = clause.condition.lower().startswith("to ")
            stated = content_terms(clause.main) | (set() if purpose else content_terms(clause.condition)) | negated
            if referring:
                # the elided or pronoun subject is what scopes the piece; what is said of it must be in the clause
                # ("Finally, it can point to any type of file" says nothing of a symbolic link's permissions)
                rest = {t: w for t, w in asked.core.items() if not _held(t, heading_terms)}
                if rest and sum(w for t, w in rest.items() if _held(t, stated)) < self.settings.min_own * sum(
                        rest.values()):
                    continue
                stated = stated | heading_terms
            if asked.complement and not _held(asked.complement, stated):
                continue  # "X was written in 1991 and is now quite outdated" does not say whether X is up to date
            if asked.topic and not any(_held(t, stated) for t in set(asked.core) - asked.topic):
                continue  # it holds only the words every sentence here shares: it speaks of the page's topic
            own = sum(w for t, w in asked.core.items() if _held(t, stated))
            # a clause whose subject is a pronoun ("It is not ...", "This project ...") may speak of what the
            # sentence before it named (or of something else): that sentence's words count as the heading's do
            named = heading_terms | content_terms(previous) if pronoun else heading_terms
            headed = sum(w for t, w in asked.core.items() if not _held(t, stated) and t in named)
            setting = sum(w for t, w in asked.setting.items() if _held(t, stated | sentence_terms | around_terms))
            # the negator of "with no need to reboot" denies nothing asked
            asserted, absent = _absent(clause.main)
            if absent & set(asked.core) and not _PRIVATIVE.search(asked.text):
                continue  # what was asked is what it does "without" (or has "no need to" do): no verdict from it
            answer = "No" if is_negated(asserted) or (negated & set(asked.core)) else "Yes"
            if answer == "No" and not negated & set(asked.core) and not is_negated(_DETERMINER_NO.sub(" ", asserted)):
                denied = {t for m in _DETERMINER_NO.finditer(asserted) for t in content_terms(m.group(1) or "")}
                if not denied & set(asked.core):
                    continue  # "there is no limit on the projects you can create" denies a limit, not creating them
            contrast = _CONTRAST.match(clause.main)
            if contrast and (content_terms(contrast.group(1)) - content_terms(clause.main[contrast.end():])) \
                    & (set(asked.core) - asked.compared):
                continue  # the asked thing is what the clause is contrasted with, not what it speaks of
            if answer == "Yes" and (excepted - content_terms(clause.main)) & asked.all_terms:
                continue  # the sentence excepts what the question asks about
            own_share = own / sum(asked.core.values())
            if own_share >= self.settings.min_own:
                out.append(((own + self.settings.heading_weight * headed + setting) / total, answer, clause.main,
                            own_share))
        return out


def _subject_modifier(clause: str, question_words: frozenset[str], described: frozenset[str]) -> set[str]:
    """The words a clause holds only in a participle phrase describing its subject, before its
    predicate ("a raw string *ending with an odd number of backslashes* will escape the quote"):
    like a restrictive relative clause, the phrase says which subjects the sentence speaks of
    and asserts nothing of them, so "can a raw string end with ...?" is not answered by it. Words
    the question itself uses to describe its subject ("emails *that fail DMARC*") are left in:
    there the two descriptions meet. The phrase opens with a lower-case -ing form the question
    does not use itself ("string" is no participle; "... on AWS. Architecting for HIPAA" opens a
    title) right after a word of the subject, and ends at the clause's first auxiliary with no
    comma between (a fronted "In releases following 2.0.8," is no part of the subject); a clause
    without an auxiliary is left as it is. `question_words`: the question's words as written;
    `described`: those describing its subject (`_described`)."""
    segments = clause.split(",")
    at = next((n for n, seg in enumerate(segments) if _AUXILIARY & set(_WORDS.findall(seg.lower()))), None)
    if at is None:
        return set()
    written = re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]", segments[at])
    words = [w.lower() for w in written]
    predicate = next(k for k, w in enumerate(words) if w in _AUXILIARY)
    for j in range(1, predicate):
        word = words[j]
        if written[j].islower() and word.endswith("ing") and len(word) >= 5 and word not in question_words \
                and words[j - 1] not in STOPWORDS:
            rest = [*segments[:at], " ".join(words[:j] + words[predicate:]), *segments[at + 1:]]
            outside = content_terms(",".join(rest))
            return content_terms(" ".join(words[j:predicate])) - outside - described
    return set()


def _described(question: str) -> frozenset[str]:
    """The words of a question's restrictive relative clause ("does Postfix reject mail *that
    fails DMARC*?"): a description of what it asks about, not the asked action."""
    relative = re.search(r"\b(?:that|which|who)\s+(.*)$", question.rstrip("?"), re.IGNORECASE)
    return frozenset(content_terms(relative.group(1))) if relative else frozenset()


def _compared(question: str) -> frozenset[str]:
    """What a question compares its subject with ("does apt-get have a full-upgrade command *like
    apt*?"): a clause contrasting with it ("Unlike apt and aptitude, apt-get doesn't ...") still
    speaks of the subject asked."""
    return frozenset(t for m in re.finditer(r"\b(?:like|unlike|than|as with)\s+([^,?]+)", question, re.IGNORECASE)
                     for t in content_terms(m.group(1)))


def _absent(clause: str) -> tuple[str, set[str]]:
    """(what the clause asserts, the words it holds only where it says something is absent):
    "it is now possible to start the installer from Windows *without the need to change BIOS
    settings*", "... *with no need to reboot*" affirm nothing of those words, nor deny anything
    else by them."""
    phrases = [m.group(1) or m.group(2) for m in _ABSENT.finditer(clause)]
    asserted = _ABSENT.sub(" ", clause)
    return asserted, set().union(*map(content_terms, phrases)) - content_terms(asserted)


def _list_lead(unit: Unit, units: Sequence[Unit]) -> str:
    """What scopes a list item as a heading scopes a section: the line introducing its list
    ("The following are some limitations for magnetic storage:") and a short label above that
    ("**Local Zones**"). "Doesn't support elastic volumes" speaks of what they name. A list with
    no introduction right above it (after a code block, another list) has none."""
    if unit.kind != ITEM:
        return ""
    earlier = [u for u in units if u.passage == unit.passage and u.index < unit.index and u.block != unit.block]
    if not earlier or earlier[-1].kind == ITEM or not earlier[-1].ends_with_colon:
        return ""
    lead = [earlier[-1].text]
    label = earlier[-2] if len(earlier) > 1 else None
    if label is not None and label.kind != ITEM and label.words <= 5 and label.block == earlier[-1].block - 1 \
            and not label.text.rstrip("* ").endswith((".", "!", "?")):
        lead.insert(0, label.text)
    return " ".join(lead)


def _pointer_start(sentence: str) -> int | None:
    """Where an imperative "see ..." / "refer to ..." (a cross-reference) starts: at the
    sentence's start or after a comma, colon or bracket ("For details, see the guide"), or
    anywhere before a link ("... affect performance see [Understanding burst](...)"); not
    "you can see the list", "users who see Error 42"."""
    for match in _POINTER.finditer(sentence):
        before, sep = (match.group("before") or "").lower(), match.group("sep") or ""
        imperative = not before or bool(re.search(r"[,;:(]", sep)) or before in ("please", "also")
        if imperative or (match.group("link") and before not in _SAYER):
            return match.start("verb")
    return None


def _held(term: str, terms: set[str]) -> bool:
    """The term, or a word of its family: stems sharing their first five letters
    ("remov" of remove and "remova" of removal, "synchr" and "sync")."""
    if term in terms:
        return True
    if len(term) < 4:
        return False
    return any(len(t) >= 4 and (t.startswith(term[:5]) or term.startswith(t[:5])) for t in terms)


def _split_question(question: str) -> tuple[str, str]:
    """(the setting the question gives, what it asks): its own condition ("if I reinstall")
    and the adjuncts after the asked action ("... a FAT32 drive | for the sync folder on
    Windows"), which the page may state once for a whole section, and what it asks of
    whom. A verdict must state the asked action on the asked subject; the setting may come
    from around the sentence."""
    text = question.strip()
    found = clauses(text.rstrip("?"))
    condition = " ".join(c.condition for c in found if c.condition != c.main)
    asked = " ".join(c.main for c in found) or text
    adjunct = _ADJUNCT.search(asked)
    # a gerund right after the preposition, before a preposition or an article, is its object ("for *upgrading* from
    # one release to the next"), no predicate; before a noun it may name a kind ("on *marketing* campaigns")
    after = re.sub(r"^\w+ing\b(?=\s+(?:from|to|into|with|on|in|for|by|of|the|a|an)\b|\s*$)", "",
                   asked[adjunct.end():]) if adjunct else ""
    if adjunct and content_terms(asked[:adjunct.start()]) and not _EXISTENTIAL.match(asked) \
            and not _PREDICATE_AFTER.search(after):
        condition, asked = f"{condition} {asked[adjunct.start():]}".strip(), asked[:adjunct.start()]
    return condition, asked


def asked_actions(asked: str) -> tuple[str, ...]:
    """The everyday verbs a question asks about ("does git describe use lightweight tags?"),
    not one followed by a to-infinitive, which carries the action instead ("do I need to pass
    -r", "can I use git diff to compare ..."), nor one whose subject is the user ("can I use
    Bluetooth headphones?" asks whether the thing works at all, which a page shows by how)."""
    words = _WORDS.findall(asked.lower())
    return tuple(w for n, w in enumerate(words) if w in _ACTION_WORDS and "to" not in words[n + 1:]
                 and (n == 0 or words[n - 1] not in ("i", "we", "you")))


def asked_restrictions(asked: str) -> tuple[str, ...]:
    """The restrictions a question asks of its predicate ("is man the *only* way", "does it
    *always* ..."), not one inside a clause about something else ("a change that I reverted on
    only one branch")."""
    head = re.split(r"\b(?:that|which|who|where|when|if)\b", asked, maxsplit=1, flags=re.IGNORECASE)[0]
    return tuple(w.lower() for w in _RESTRICTION.findall(head))


def asked_names(asked: str) -> tuple[str, ...]:
    """The proper names a question asks about ("Can I use AWS Lambda as a target?": lambda), the
    capitalised words past the first of each of its sentences, which a page writes the same way;
    acronyms and commands are identifiers, checked as such, and a title-cased question's function
    words ("Can I Use ...") name nothing."""
    names = []
    for part in re.split(r"(?<=[.!?])\s+", asked):
        words = re.findall(r"[A-Za-z][\w-]*", part)
        names += [w.lower() for w in words[1:] if re.fullmatch(r"[A-Z][a-z][\w-]*", w) and len(w) >= 3
                  and w.lower() not in STOPWORDS and w.lower() not in _ACTION_WORDS]
    return tuple(names)


def asked_complement(asked: str) -> str | None:
    """What a copular question asks its subject to be, its last word ("is the first article
    still up to *date*?", "is RAID a *backup*?"); not for "is there ...?", which asks whether
    something exists."""
    if not re.match(r"^\W*(?:is|are|was|were)(?:n't)?\s+(?!there\b)", asked, re.IGNORECASE):
        return None
    for word in reversed(_WORDS.findall(asked.lower())):
        terms = content_terms(word) if word not in STOPWORDS else set()
        if terms:
            return next(iter(terms))
    return None


def asked_participles(asked: str) -> tuple[str, ...]:
    """The passive participles a question asks of its subject ("is the command installed by
    default?", "are modules signed automatically?"): those ending the phrase, before a
    preposition or an adverb, not one naming a kind of thing before its noun ("installed
    files")."""
    words = _WORDS.findall(asked.lower())
    return tuple(w for n, w in enumerate(words) if _PARTICIPLE.fullmatch(w)
                 and (n + 1 == len(words) or words[n + 1] in STOPWORDS or words[n + 1].endswith("ly")))


def _rarity(uses: dict[str, int], pieces: int) -> dict[str, float]:
    """How telling each asked word is among the pieces (`uses`: how many of them hold it): a
    word most pieces share names the page's topic, not the thing asked."""
    n = max(pieces, 1)
    return {t: math.log(1 + n / (1 + used)) + 0.1 for t, used in uses.items()}


def _topic_words(terms: set[str], uses: dict[str, int], pieces: int) -> frozenset[str]:
    """The asked words more than half of the pieces use, where there are enough pieces to tell
    and the question asks other words too ("lambda" and "functions" on a page where every
    sentence names Lambda functions, for "can I use Lambda functions as targets?"): a clause
    holding none of the other words says something else about the topic ("Lambda functions are
    billed per request")."""
    if pieces < 3:
        return frozenset()
    topic = frozenset(t for t in terms if 2 * uses[t] > pieces)
    return topic if topic != terms else frozenset()
