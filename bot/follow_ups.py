"""Reads a follow-up in a conversation as the whole question it stands for.

"And on a Mac?" after "How do I install Driftwood on Windows?" asks "How do I install
Driftwood on a Mac?". A short follow-up leaves out everything it shares with the question
before it; retrieval and the composer need that question whole, or they find the Mac
page's introduction instead of its steps.

Two shapes, told apart by English syntax only (no word chosen on a docs set):
- a fragment ("and on a Mac?", "what about the CLI?", "Linux?"): the previous question is
  the frame, and the fragment takes the place of the part it stands in for - the phrase
  after the same preposition, else the phrase closest to it in meaning;
- a whole question that points back ("How do I uninstall it?", "Is that free?"): its
  pronoun is replaced by what the previous question was about (that question without its
  question words and its verb).
A question that stands on its own is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.protocols import TextSimilarity

_QUESTION_WORDS = frozenset("what which who whom whose where when why how".split())
_AUXILIARIES = frozenset("""is are am was were can could does do did will would should shall has have had may might
must isn't aren't can't doesn't don't won't wasn't weren't couldn't shouldn't""".split())
_SUBJECTS = frozenset("i we you".split())
_CONTINUATIONS = ("what about", "how about", "and what about", "and how about", "and", "or", "but", "also", "then",
                  "same for", "same with")
_PREPOSITIONS = frozenset("""on in for with from to at under via using without into onto over by inside behind
through""".split())
_DETERMINERS = frozenset("a an the my our your their its this that these those some any".split())
_REFERRING = frozenset("it its them they".split())
_DEMONSTRATIVES = frozenset("this that these those".split())
_WORD = re.compile(r"[\w'.-]*\w|[^\w\s]")
_CLAUSE_END = re.compile(r"[?.!,;:]")
_MAX_FRAGMENT_WORDS = 6  # longer text without a question opener is a statement of its own, not a fragment


def standalone_question(question: str, history: Sequence[str], similarity: TextSimilarity | None = None) -> str:
    """The question a follow-up stands for, given the conversation's earlier questions
    (oldest first, each already read as a whole question); `question` itself when it
    stands on its own or there is nothing before it."""
    if not history:
        return question
    previous = history[-1].strip()
    text = question.strip()
    fragment = _fragment(text)
    if fragment is not None:
        return _substitute(previous, fragment, similarity) if fragment else previous
    pointer = _pointer(text)
    if pointer is not None:
        start, end = pointer
        before = text[:start].rstrip().rsplit(" ", 1)[-1].lower()
        after = _words(text[end:])
        if before in ("do", "does", "did", "doing", "done") and (not after or after[0] in _PREPOSITIONS):
            # "do that (from the command line)": the earlier action, whole; not "does it serve"
            start -= len(before) + (start - len(text[:start].rstrip()))
            referent = _about(previous, keep_action=True)
        else:
            referent = _about(previous)
        if referent:
            return text[:start] + referent + text[end:]
    return question


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if re.match(r"\w", w)]


def _fragment(text: str) -> str | None:
    """The fragment's own part ("on a Mac" of "And on a Mac?"), "" for a bare "and?", None
    when the text is not a fragment."""
    lowered = text.lower()
    for opener in _CONTINUATIONS:
        if re.match(rf"{re.escape(opener)}\b", lowered):
            rest = text[len(opener):].strip(" ,")
            words = _words(rest)
            if words and (words[0] in _QUESTION_WORDS or words[0] in _AUXILIARIES) and len(words) > 3:
                return None  # "and how do I remove a device?": a question of its own, joined by "and"
            return _strip_end(rest)
    words = _words(text)
    if not words or len(words) > _MAX_FRAGMENT_WORDS or words[0] in _QUESTION_WORDS or words[0] in _AUXILIARIES:
        return None
    if not text.rstrip().endswith("?"):
        return None  # "Install the CLI." is an instruction, not an elided question
    return _strip_end(text)


def _strip_end(text: str) -> str:
    return text.strip().rstrip("?!. ").strip()


def _pointer(text: str) -> tuple[int, int] | None:
    """Where the pronoun that points back sits: "it"/"them"/"they", or a demonstrative
    standing alone ("do that", "does this work") rather than before a noun ("this page")."""
    tokens = list(re.finditer(r"[\w']+|[^\w\s]", text))
    for i, token in enumerate(tokens):
        word = token.group(0).lower()
        if word in _REFERRING:
            return token.start(), token.end()
        if word in _DEMONSTRATIVES:
            following = tokens[i + 1].group(0).lower() if i + 1 < len(tokens) else "?"
            if not re.match(r"\w", following) or following in _AUXILIARIES or following in _PREPOSITIONS:
                return token.start(), token.end()
    return None


def _about(question: str, keep_action: bool = False) -> str:
    """What a question is about: without its question words, auxiliary, subject pronoun and
    the verb after that pronoun ("How do I install Driftwood on Windows?" -> "Driftwood on
    Windows"; "Where is the config file?" -> "the config file")."""
    tokens = _strip_end(question).split()
    i = 0
    if tokens and tokens[0].lower() in _QUESTION_WORDS:  # "Which port does Apache ...": past the auxiliary
        aux = next((k for k, t in enumerate(tokens[:5]) if t.lower() in _AUXILIARIES), None)
        i = aux if aux is not None else 0
    while i < len(tokens) and tokens[i].lower().strip(",") in _QUESTION_WORDS | _AUXILIARIES:
        i += 1
    if i < len(tokens) and tokens[i].lower() in _SUBJECTS:
        i += 1 if keep_action else 2  # "I install": the action is the follow-up's to say
    return " ".join(tokens[i:])


def _substitute(frame: str, fragment: str, similarity: TextSimilarity | None) -> str:
    """The frame question with the fragment in place of the phrase it stands in for."""
    words = fragment.split()
    body = _strip_end(frame)
    mark = frame.rstrip()[-1] if frame.rstrip()[-1:] in "?!." else "?"
    if words[0].lower() in _PREPOSITIONS:  # "on a Mac" takes the place of a phrase like "on Windows"
        phrases = _prepositional_phrases(body)
        same = [p for p in phrases if body[p[0]:p[1]].split()[0].lower() == words[0].lower()]
        if same:
            start, end = same[-1]
        elif phrases and similarity is not None:
            objects = [body[a:b].split(" ", 1)[-1] for a, b in phrases]
            scores = similarity.similarities(" ".join(words[1:]) or fragment, objects)
            start, end = phrases[max(range(len(phrases)), key=lambda i: scores[i])]
        elif phrases:
            start, end = phrases[-1]
        else:
            return f"{body} {fragment}{mark}"
        return body[:start] + fragment + body[end:] + mark
    pronouns = [k for k, w in enumerate(words) if k > 0 and _is_pronoun(words, k)]
    if pronouns:  # "disable one", "show its details": a new action on what was asked about
        predicate = _about(body, keep_action=True)  # "enable an Apache module" of "How do I enable ..."
        opener = body[: len(body) - len(predicate)].rstrip() if predicate and body.endswith(predicate) else ""
        own = " ".join(w for k, w in enumerate(words) if k not in pronouns)
        return f"{opener} {own} {_about(body)}{mark}" if opener else f"{body} {own}{mark}"
    words = [w for k, w in enumerate(words) if not _is_pronoun(words, k)] or words  # "its example files"
    fragment = " ".join(words)
    spans = _candidate_spans(body)
    if similarity is None or not spans:
        return f"{body} {fragment}{mark}"
    scores = similarity.similarities(fragment, [body[s:e] for s, e in spans])
    start, end = spans[max(range(len(spans)), key=lambda i: scores[i])]
    return body[:start] + fragment + body[end:] + mark


def _is_pronoun(words: list[str], k: int) -> bool:
    """"it"/"its"/"them"/"they", or "one" standing for a noun ("disable one"), not counting
    one ("in one session")."""
    word = words[k].lower()
    if word in _REFERRING:
        return True
    following = words[k + 1].lower() if k + 1 < len(words) else ""
    return word == "one" and (not following or following in _PREPOSITIONS)


def _prepositional_phrases(text: str) -> list[tuple[int, int]]:
    """(start, end) of each phrase that opens with a preposition, up to the next
    preposition or clause mark ("on Windows", "to a group")."""
    tokens = list(re.finditer(r"[\w'.-]*\w|[^\w\s]", text))
    phrases = []
    for i, token in enumerate(tokens):
        if token.group(0).lower() not in _PREPOSITIONS or i == 0:
            continue
        end = i + 1
        while end < len(tokens) and not _CLAUSE_END.fullmatch(tokens[end].group(0)) \
                and tokens[end].group(0).lower() not in _PREPOSITIONS:
            end += 1
        if end > i + 1:
            phrases.append((token.start(), tokens[end - 1].end()))
    return phrases


def _candidate_spans(body: str) -> list[tuple[int, int]]:
    """The phrases a fragment may stand in for: each noun phrase after the question's verb,
    with its determiner ("the desktop app"), split at prepositions and conjunctions."""
    tokens = [(m.start(), m.end(), m.group(0).lower()) for m in re.finditer(r"[\w'.-]*\w", body)]
    i = 0
    while i < len(tokens) and tokens[i][2] in _QUESTION_WORDS | _AUXILIARIES:
        i += 1
    spans: list[tuple[int, int]] = []
    if i + 1 < len(tokens) and tokens[i][2] in _SUBJECTS:
        i += 2  # past "I add": the action stays
    breaks = _PREPOSITIONS | {"and", "or", "of", "but"} | _AUXILIARIES
    run: list[tuple[int, int, str]] = []
    for token in tokens[i:] + [(len(body), len(body), "of")]:
        if token[2] in breaks:
            if any(t[2] not in _DETERMINERS for t in run):
                spans.append((run[0][0], run[-1][1]))
            run = []
        else:
            run.append(token)
    return spans
