"""The grounded answer composer: picks what answers the question out of the retrieved
passages - whole sentences, list items, code blocks, table rows - and lays them out in the
document's order, each group tagged with the number of the passage it comes from.

Nothing here writes a fact. The best-matching piece (the anchor) is found by meaning
(sentence embeddings) and by the question's rarer words; the answer grows around it in
reading order, because the sentence after a match usually finishes what it started, and a
list, table or code block is quoted with its introduction. No parameter depends on a corpus:
scores are compared only within one question's passages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.grounding import GENERIC_WORDS, STOPWORDS, content_terms, missing_identifiers
from bot.passage_units import CODE, FRAGMENT, HEADER, ITEM, LABEL, PRE, ROW, SENTENCE, TITLE, Unit, split_units
from bot.protocols import PromptPassage, TextSimilarity
from bot.verdicts import Verdict, VerdictFinder

_YES_NO_OPENERS = frozenset("""is are am was were can could does do did will would should shall has have had may
might must isn't aren't can't doesn't don't won't""".split())
_CONDITIONS = frozenset("if when whenever once after before while unless".split())
_QUESTION_WORDS = frozenset("what which who whom whose where when why how".split())
_SUBJECT_OPENERS = frozenset("""i you we they it he she there this that these those the a an my your our their its
all any some""".split())
_RELATIVE_LINK = re.compile(r"\[([^\[\]]+)\]\((?![a-z][a-z0-9+.-]*:)[^()\s]*\)", re.IGNORECASE)
_HOW_TO = re.compile(r"^\W*(?:how\s+(?:do|does|can|could|should|would|to|will|is|are)\b|is there a way to\b|"
                     r"what(?:'s| is| are) the (?:steps|way|command)s?\b)", re.IGNORECASE)
_WHERE = re.compile(r"^\W*(?:where\b|where's\b|(?:in |on |under )?which (?:menu|screen|setting|settings|tab|page|"
                    r"folder|file|directory|option)s?\b)", re.IGNORECASE)
_ANSWERABLE = (SENTENCE, ITEM, ROW, LABEL, PRE)
# a reply's own "Yes, ..." or "No." (not "No changes are made")
_INTERJECTION = re.compile(r"(?:yes|no)(?:\s*[,.!;:\u2014-]|\s*$)", re.IGNORECASE)
# ... standing alone as a piece: the reply to an entry's heading ("Must I go into single user mode? No.  Packages ...")
_BARE_REPLY = re.compile(r"^\W*(?:yes|no)\W*$", re.IGNORECASE)


@dataclass(frozen=True)
class ComposerSettings:
    budget_words: int = 70  # the answer grows around its anchor up to about this many words
    max_block_words: int = 160  # a list, table or code block is quoted whole up to this size
    lexical_weight: float = 0.5  # meaning (cosine) + this much of the question's rare words found
    min_lexical: float = 0.0  # an anchor must hold more than this share of the question's words ...
    min_similarity: float = 0.3  # ... or be at least this close in meaning
    sure_similarity: float = 0.6  # a piece this close answers even when retrieval found no page close enough
    subject_similarity: float = 0.8  # the question without its unknown words must stay this close to itself
    max_candidates: int = 120  # pieces scored per question, in retrieval order (bounds the embedding time)
    runner_up_ratio: float = 0.85  # another block of the same page scoring this share of the best joins it
    steps_bonus: float = 0.1  # a how-to question is answered by the steps (a numbered item, a command), not the page's intro
    rank_penalty: float = 0.25  # retrieval ranks pages on more than one sentence: a lower page must win clearly

    def __post_init__(self) -> None:
        if self.budget_words < 10:
            raise ValueError("composer budget_words must be at least 10")


@dataclass(frozen=True)
class Composition:
    body: str  # Markdown with [n] markers
    pieces: list[tuple[int, str]]  # (passage number, verbatim text) in the order they appear
    cited: list[int]  # passage numbers in first-cited order
    yes_no: str | None  # "Yes" / "No" when the question asks one and a quoted sentence states it


class Composer:
    def __init__(self, similarity: TextSimilarity | None = None, settings: ComposerSettings | None = None,
                 verdicts: VerdictFinder | None = None) -> None:
        self.similarity = similarity
        self.settings = settings or ComposerSettings()
        self.verdicts = verdicts or VerdictFinder(similarity=similarity)

    def compose(self, question: str, passages: Sequence[PromptPassage]) -> Composition | None:
        """None when no piece of the passages is close enough to the question to quote."""
        found = self._best_piece(question, passages)
        if found is None:
            return None
        units, candidates, scores, lexical, sims, best = found
        if lexical[best] <= self.settings.min_lexical and sims[best] < self.settings.min_similarity:
            return None
        anchor = candidates[best]
        if self._about_something_else(question, anchor, passages):
            return None
        how_to, where = is_how_to_question(question), is_where_question(question)
        if how_to and not _leads_steps(anchor, units):
            best = self._steps_instead(candidates, scores, best, units)  # a how-to's steps lead, not the page's intro
            anchor = candidates[best]
        steps_first = how_to and _leads_steps(anchor, units)
        # "where is X", or one entry of a list that alone matches: that item under its list's
        # introduction (the menu path), not the whole menu with the answer fifth; a how-to's
        # list is a procedure (bulleted or not), quoted whole
        item_first = anchor.kind == ITEM and not _is_step(anchor) and (
            where or (not how_to and self._stands_out(best, candidates, scores)))
        seconds = [] if item_first else self._runner_up(candidates, scores, best)
        passage_units = [u for u in units if u.passage == anchor.passage]
        chosen = self._grow(anchor, passage_units, seconds, steps_first, item_first)
        if steps_first or item_first:
            chosen = _answer_first(anchor, chosen, passage_units)
        # a bare "No." replies to its entry's heading, not to what was asked: inside an answer it would read as one
        chosen = [u for n, u in enumerate(chosen) if n == 0 or not _BARE_REPLY.match(u.text)]
        if not is_yes_no_question(question):
            return _naming_what_it_answers(_render(chosen), passages)
        verdict = self.verdicts.find(question, units, {n: p.location for n, p in enumerate(passages, 1)})
        if verdict is None:  # no sentence states it: the answer says what the docs say
            return _naming_what_it_answers(_render(chosen), passages)
        # under a checked verdict, not even as the first piece ("Yes." above "No. Debian has ...")
        rest = [u for u in chosen if u != verdict.unit and not _BARE_REPLY.match(u.text)]
        return _with_verdict(verdict, _render(rest))

    def states_answer(self, question: str, passages: Sequence[PromptPassage]) -> bool:
        """Whether one piece of the passages is so close to the question in meaning that it
        answers it (and is not about something else), though retrieval found no passage
        close enough as a whole: a page's embedding dilutes a one-line answer ("where do the
        log files live on windows" against the one sentence that says where). The bar is
        above the closest piece any off-topic question reached on the git and aws-docs-qa
        sets (0.57); it was checked on the sample docs, not set there."""
        found = self._best_piece(question, passages) if self.similarity is not None else None
        if found is None:
            return False
        _, candidates, _, _, sims, best = found
        return sims[best] >= self.settings.sure_similarity and \
            not self._about_something_else(question, candidates[best], passages)

    def _best_piece(self, question: str, passages: Sequence[PromptPassage]) -> tuple | None:
        """(units, answerable candidates, their scores, lexical shares, similarities, index
        of the best); None when the passages hold nothing answerable."""
        units = [u for n, p in enumerate(passages, 1) for u in split_units(p.text, n)]
        candidates = [u for u in units if u.kind in _ANSWERABLE][: self.settings.max_candidates]
        if not candidates:
            return None
        scores, lexical, sims = self._score(question, candidates, [p.location for p in passages])
        best = max(range(len(candidates)), key=lambda i: scores[i])
        return units, candidates, scores, lexical, sims, best

    def _runner_up(self, candidates: list[Unit], scores: list[float], best: int) -> list[Unit]:
        """Another block of the anchor's page that matches almost as well is quoted too: the
        best match is sometimes a side remark next to the sentence that answers."""
        anchor = candidates[best]
        others = [i for i, u in enumerate(candidates) if u.passage == anchor.passage and u.block != anchor.block]
        if not others:
            return []
        second = max(others, key=lambda i: scores[i])
        return [candidates[second]] if scores[second] >= self.settings.runner_up_ratio * scores[best] else []

    def _stands_out(self, best: int, candidates: list[Unit], scores: list[float]) -> bool:
        """The best item matches clearly better than every other item of its list: the list
        is not the answer, that item is."""
        anchor = candidates[best]
        siblings = [scores[i] for i, u in enumerate(candidates)
                    if u.passage == anchor.passage and u.block == anchor.block and i != best]
        return bool(siblings) and max(siblings) < self.settings.runner_up_ratio * scores[best]

    def _steps_instead(self, candidates: list[Unit], scores: list[float], best: int, units: list[Unit]) -> int:
        """For a how-to whose best match is prose (the page's "this page explains how to
        ..."), the best step when it scores nearly as well (a lower page's steps pay the rank
        penalty): the user asked what to do, and the steps say it."""
        steps = [i for i, u in enumerate(candidates) if _leads_steps(u, units)]
        if not steps:
            return best
        step = max(steps, key=lambda i: scores[i])
        return step if scores[step] >= self.settings.runner_up_ratio * scores[best] else best

    def _about_something_else(self, question: str, anchor: Unit, passages: Sequence[PromptPassage]) -> bool:
        """The question's own subject is missing from the passages ("cancel my gym membership"
        against a page on cancelling a plan): the words the passages never use carry much of
        the question's meaning (the question without them reads differently), and dropping
        them brings the question closer to the best piece found - so that piece answers a
        different question."""
        if self.similarity is None:
            return False
        known = set().union(*(content_terms(f"{p.location} {p.text}") for p in passages))
        kept, unknown = [], []
        for token in question.split():
            word = re.sub(r"[^A-Za-z'-]", "", token).lower().replace("'", "")
            if word and word not in STOPWORDS and word not in GENERIC_WORDS and len(word) > 2 \
                    and not (content_terms(word) & known):
                unknown.append(word)
            else:
                kept.append(token)
        if not unknown or not kept:
            return False
        reduced = " ".join(kept)
        to_reduced, to_anchor = self.similarity.similarities(question, [reduced, _plain(anchor.text)])
        reduced_to_anchor = self.similarity.similarities(reduced, [_plain(anchor.text)])[0]
        return to_reduced < self.settings.subject_similarity and reduced_to_anchor > to_anchor

    def _score(self, question: str, units: list[Unit], locations: Sequence[str] = ()) -> tuple[list[float], list[float], list[float]]:
        """Meaning plus the question's rarer words. A word the page's text takes for granted
        because its heading says it (a step under "Install on Windows > Install the desktop
        app" never says "desktop app") counts half for every piece of that page; a reply opening
        the page ("Yes, there is.") is read with its heading's question, whose words it leaves out."""
        texts = [_plain(u.text) for u in units]
        # a passage's opening replies to its heading when that is a question (a FAQ entry's "Not as such."), or when
        # it opens with "Yes, ..." or "No.": read with it
        headings = [_own_heading(location) for location in locations]
        replying = {i: headings[u.passage - 1] for i, u in enumerate(units)
                    if u.index == 0 and u.passage <= len(headings)
                    and (headings[u.passage - 1].endswith("?") or _INTERJECTION.match(u.text))}
        texts = [f"{replying[i]} {t}" if i in replying else t for i, t in enumerate(texts)]
        sims = list(self.similarity.similarities(question, texts)) if self.similarity else [0.0] * len(units)
        unit_terms = [content_terms(t) for t in texts]
        said: dict[int, set[str]] = {}
        for terms, u in zip(unit_terms, units):
            said.setdefault(u.passage, set()).update(terms)
        headed = {n: content_terms(loc) - said.get(n, set()) for n, loc in enumerate(locations, 1)}
        heading_terms = [headed.get(u.passage, set()) for u in units]
        df: dict[str, int] = {}
        for terms, above in zip(unit_terms, heading_terms):
            for term in terms | above:
                df[term] = df.get(term, 0) + 1
        weights = {t: math.log(1 + len(units) / df[t]) for t in content_terms(question) if t in df}
        total = sum(weights.values())
        lexical = [sum(w * (1.0 if t in terms else 0.5 if t in above else 0.0) for t, w in weights.items()) / total
                   if total else 0.0 for terms, above in zip(unit_terms, heading_terms)]
        steps = self.settings.steps_bonus if is_how_to_question(question) else 0.0
        scores = [s + self.settings.lexical_weight * lex - self.settings.rank_penalty * (u.passage - 1)
                  + (steps if _is_step(u) else 0.0) for s, lex, u in zip(sims, lexical, units)]
        return scores, lexical, sims

    def _grow(self, anchor: Unit, units: list[Unit], seconds: list[Unit], steps_first: bool = False,
              item_only: bool = False) -> list[Unit]:
        """The anchor with what it needs (a list's intro and items, a table's header, the code
        a sentence introduces), then its neighbours in reading order up to the word budget.
        `item_only`: a list item is quoted with its list's introduction and nothing more: the
        list's other entries, each a clearly worse match, do not help (a menu's other entries
        do not say where X is)."""
        chosen: dict[int, Unit] = {}
        by_index = {u.index: u for u in units}

        def take(unit: Unit) -> None:
            for u in _with_attachments(unit, units, self.settings.max_block_words):
                chosen[u.index] = u

        if item_only:
            intro = _intro_of(anchor.block, units)
            return [u for u in (intro, anchor) if u is not None]
        take(anchor)
        for second in seconds:
            take(second)
            following = by_index.get(second.index + 1)
            if following is not None and following.block == second.block:
                take(following)
        after, before = anchor.index + 1, anchor.index - 1
        while _words(chosen) < self.settings.budget_words and (after in by_index or before >= 0):
            while after in chosen:
                after += 1
            if after in by_index:
                unit = by_index[after]
                if unit.kind in (FRAGMENT, TITLE) or (unit.kind == LABEL and _words(chosen) >= self.settings.budget_words // 2):
                    break  # the next section begins: it answers something else
                if unit.block != anchor.block and _words(chosen) + _block_words(unit, units) > 1.3 * self.settings.budget_words:
                    break
                take(unit)
                after += 1
                continue
            while before in chosen:
                before -= 1
            if steps_first or before < 0 or by_index[before].kind in (CODE, HEADER, ITEM, FRAGMENT, TITLE) or (
                    by_index[before].kind == LABEL and by_index[before].block + 1 != min(chosen.values(), key=lambda u: u.index).block):
                break
            take(by_index[before])
            before -= 1
        return [chosen[i] for i in sorted(chosen)]


def _with_attachments(unit: Unit, units: list[Unit], max_words: int) -> list[Unit]:
    same_block = [u for u in units if u.block == unit.block]
    out = [unit]
    if unit.kind == ROW:
        out += [u for u in same_block if u.kind == HEADER]
    elif unit.kind == ITEM:
        intro = _intro_of(unit.block, units)
        items = [u for u in same_block if u.kind == ITEM]
        if sum(u.words for u in items) <= max_words:
            out += items
        out += [intro] if intro else []
    elif unit.ends_with_colon or unit.kind == LABEL:
        following = [u for u in units if u.block == unit.block + 1]
        if following and sum(u.words for u in following) <= max_words:
            out += following
    return out


def _intro_of(block: int, units: list[Unit]) -> Unit | None:
    previous = [u for u in units if u.block == block - 1]
    return previous[-1] if previous and previous[-1].kind in (SENTENCE, LABEL) and previous[-1].ends_with_colon else None


def _block_words(unit: Unit, units: list[Unit]) -> int:
    return sum(u.words for u in units if u.block == unit.block) if unit.kind != SENTENCE else unit.words


def _words(chosen: dict[int, Unit]) -> int:
    return sum(u.words for u in chosen.values())


def _plain(text: str) -> str:
    return re.sub(r"[*`|#]+", " ", text).strip()


def _leads_steps(unit: Unit, units: list[Unit]) -> bool:
    """A step, or the line that introduces steps ("To install Driftwood on a Mac:")."""
    if _is_step(unit):
        return True
    following = next((u for u in units if u.passage == unit.passage and u.index == unit.index + 1), None)
    return unit.ends_with_colon and following is not None and _is_step(following)


def _answer_first(anchor: Unit, chosen: list[Unit], units: list[Unit]) -> list[Unit]:
    """The anchor's block (with the line that introduces it) leads; what else was chosen
    follows in reading order, so a page's introduction comes after the steps it introduces."""
    intro = _intro_of(anchor.block, units)
    lead_blocks = {anchor.block} | ({intro.block} if intro is not None else set())
    if anchor.ends_with_colon:
        lead_blocks.add(anchor.block + 1)
    lead = [u for u in chosen if u.block in lead_blocks]
    return lead + [u for u in chosen if u.block not in lead_blocks]


def is_where_question(question: str) -> bool:
    """"Where is/can/do ...", "where's ...", "which menu/screen/setting ...": asks for a place
    (a menu path, a file, a screen), answered by the item that names it."""
    return bool(_WHERE.match(question))


def is_how_to_question(question: str) -> bool:
    """"How do I ...", "how to ...", "how can I ...": asks for steps (not "how much/many/long")."""
    return bool(_HOW_TO.match(question))


def _is_step(unit: Unit) -> bool:
    return unit.kind in (CODE, PRE) or (unit.kind == ITEM and bool(re.match(r"\s*\d{1,2}[.)]\s", unit.text)))


def is_yes_no_question(question: str) -> bool:
    """Opens with an auxiliary ("Can I...", "Doesn't it..."), after a short fronted phrase at
    most ("In Amazon RDS, can I exceed my credit balance?"), or after a condition written
    without its comma ("When you stop a DB instance does it keep its endpoint?")."""
    words = question.strip().lower().split()
    if words and words[0] in _YES_NO_OPENERS and (question.strip().endswith("?") or len(words) > 2):
        return True
    fronted, comma, rest = question.partition(",")
    if comma:
        return len(fronted.split()) <= 6 and rest.strip().endswith("?") and is_yes_no_question(rest)
    return _inverted_after_condition([re.sub(r"[^\w']", "", w) for w in words]) and question.strip().endswith("?")


def _inverted_after_condition(words: list[str]) -> bool:
    """"if/when/once ... <auxiliary> <subject> ...": the main clause asks with an inverted
    auxiliary ("does it", "can I", "will the files") and no question word came before it."""
    if not words or words[0] not in _CONDITIONS:
        return False
    for k in range(3, len(words) - 1):
        if words[k - 1] in _QUESTION_WORDS:
            return False
        if words[k] in _YES_NO_OPENERS and words[k + 1] in _SUBJECT_OPENERS:
            return True
    return False


def _render(units: list[Unit], yes_no: str | None = None) -> Composition:
    """Groups units by block: prose joined into a paragraph with its [n] at the end, list
    items one per line, tables under their header, code blocks fenced."""
    verbatim = {(u.passage, u.index): u.text for u in units}  # what verification compares with the passage
    units = [_balanced(u) for u in units]
    parts: list[str] = []
    pieces: list[tuple[int, str]] = []
    cited: list[int] = []
    groups: list[list[Unit]] = []
    for unit in units:
        last = groups[-1][-1] if groups else None
        prose = last is not None and last.kind == unit.kind == SENTENCE and not last.ends_with_colon
        if last is not None and last.passage == unit.passage and (last.block == unit.block or prose):
            groups[-1].append(unit)  # one passage's consecutive sentences: one paragraph, one citation
        else:
            groups.append([unit])
    for g, group in enumerate(groups):
        n = group[0].passage
        if n not in cited:
            cited.append(n)
        kind = group[0].kind
        pieces.extend((n, verbatim[(u.passage, u.index)]) for u in group)
        if kind in (SENTENCE, LABEL):
            parts.append(_cite(" ".join(u.text for u in group), n))
        elif kind == ITEM:
            lines = [u.text for u in group]
            introduced = g > 0 and groups[g - 1][-1].ends_with_colon and groups[g - 1][-1].passage == n
            if not introduced:
                lines[-1] = _cite(lines[-1], n)
            parts.append("\n".join(lines))
        elif kind in (ROW, HEADER):
            rows = [u.text for u in group if u.kind == HEADER] + [u.text for u in group if u.kind == ROW]
            parts.append(_introduced(groups, g, n, "\n".join(rows)))
        else:  # CODE, PRE
            parts.append(_introduced(groups, g, n, "\n".join(u.text for u in group)))
    body = "\n\n".join(parts)
    return Composition(body=body, pieces=pieces, cited=cited, yes_no=yes_no)


def _with_verdict(verdict: Verdict, rest: Composition) -> Composition:
    """The sentence that states the verdict, quoted right under it, then the rest."""
    n = verdict.unit.passage
    sentence = _link_text(re.sub(r"^\s*(?:\d{1,2}[.)]|[-*+\u2022])\s+", "", verdict.sentence))
    lead = _cite(sentence, n)
    body = f"{lead}\n\n{rest.body}" if rest.body else lead
    cited = [n] + [c for c in rest.cited if c != n]
    return Composition(body=body, pieces=[(n, verdict.sentence)] + rest.pieces, cited=cited, yes_no=verdict.answer)


def _own_heading(location: str) -> str:
    """A passage's own section heading, the last part of its location ("Title > Section > Own")."""
    return location.rsplit(" > ", 1)[-1].strip()


def _naming_what_it_answers(composition: Composition, passages: Sequence[PromptPassage]) -> Composition:
    """A page's own "Yes, ..." or "No, ..." answers the page's question (a FAQ entry's heading),
    which may not be the one asked ("Yes, .pyd files are dll's" for "is a .so file a DLL?").
    Where no sentence states the asked verdict, the answer never opens with one: it names the
    question the page answers, its heading when that is a question, before quoting it."""
    if not _INTERJECTION.match(composition.body):
        return composition
    passage = passages[composition.cited[0] - 1]
    heading = _own_heading(passage.location)
    # (the heading is named only where its values and names are in the passage's text, as every quote's are; in
    # italics, not quotation marks, which would make the whole question one quoted label)
    named = heading.endswith("?") and not missing_identifiers(heading, [passage.text])
    lead = f"The docs' answer to _{heading}_:" if named else "The docs say:"
    return replace(composition, body=f"{lead} {composition.body}")


def _balanced(unit: Unit) -> Unit:
    """A literal "**" in the docs (a glob, say) would open bold that never closes: escape it.
    A link to another page of the docs reads as its text ("see Accounts"): its relative
    address means nothing in a chat, and the answer's citations point to the pages."""
    if unit.kind in (CODE, PRE):
        return unit
    text = _link_text(unit.text)
    if text.count("**") % 2:
        text = text.replace("**", "\\*\\*")
    return replace(unit, text=text) if text != unit.text else unit


def _link_text(text: str) -> str:
    """Relative links read as their text, except inside bold or code: a bold label or a code
    span is quoted exactly as the page has it (identifiers are checked verbatim)."""
    kept = re.split(r"(\*\*[^*\n]+\*\*|`[^`\n]+`)", text)
    return "".join(part if n % 2 else _RELATIVE_LINK.sub(r"\1", part) for n, part in enumerate(kept))


def _introduced(groups: list[list[Unit]], g: int, n: int, text: str) -> str:
    """A block quoted right after prose from its own passage is cited by that prose."""
    if g > 0 and groups[g - 1][-1].passage == n and groups[g - 1][-1].kind in (SENTENCE, LABEL, ITEM):
        return text
    return f"From [{n}]:\n{text}"


def _cite(text: str, n: int) -> str:
    """The [n] before the text's closing punctuation (and a closing quote or bracket), or at its
    end: a trailing smiley (" :)") is no punctuation."""
    match = re.search(r"(?<!\s)([.!?:])(\*\*|[\"')])?$", text)
    if match:
        return f"{text[:match.start()]} [{n}]{text[match.start():]}"
    return f"{text} [{n}]"
