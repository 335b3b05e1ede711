"""Checks that an answer's text is backed by the passages it cites, word for word where it
matters. A 135M model (or any model) can phrase, but every identifier it writes - a command,
a path, a number with its unit, an error code, a quoted or bold UI label - must appear
verbatim in a passage, and a sentence must say what its passage says, not something else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Spans a user would copy or act on. Order matters: code spans and URLs before bare tokens.
_CODE = re.compile(r"`([^`\n]+)`")
_URL = re.compile(r"\bhttps?://[^\s)>\]\"'`]+")
_QUOTED = re.compile(r"\"([^\"\n]{2,60})\"|\u201c([^\u201d\n]{2,60})\u201d")
_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")
_PATH = re.compile(r"(?<![\w/])(?:~|\.{1,2})?(?:/[\w.@%+-]+){2,}/?|\b[A-Za-z]:\\[^\s`]+")
_FILE = re.compile(r"\b[\w-]+\.(?:[a-z]{2,5})\b(?!\.\w)")
_FLAG = re.compile(r"(?<![\w-])--?[a-zA-Z][\w-]*")
_EXTENSION = re.compile(r"(?<![\w.])\.[A-Za-z][A-Za-z0-9]{0,5}\b")  # a file type by its extension: ".so", ".deb"
# Numbers (with a unit if one follows), and tokens mixing letters and digits (DW-1042, 4.2.0, c5d.12xlarge).
_NUMBER = re.compile(r"(?<![\w.])\$?\d[\d,]*(?:\.\d+)*%?(?:\s?(?:[KMGT]i?B|ms|s|MB/s|kbps|days?|hours?|minutes?|seconds?))?\b")
_MIXED = re.compile(r"\b(?=[\w.-]*\d)(?=[\w.-]*[A-Za-z])[A-Za-z0-9][\w.-]*[A-Za-z0-9]\b")
_ALLCAPS = re.compile(r"\b[A-Z][A-Z0-9_]{2,}\b")
_COMMON_CAPS = {"API", "CLI", "FAQ", "URL", "SSO", "FYI", "ASAP", "TIP", "NOTE", "OK", "PDF", "HTML", "JSON", "HTTP", "HTTPS"}

_WORD = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers him his how i if in into is it its itself just let me more most my no nor not now of off on once only or
other our ours out over own same she should so some such than that the their theirs them then there these they
this those through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself please thanks thank hi hello hey get got want need know tell use using way
""".split())
# Everyday words that carry no subject: a question's subject is what remains without them.
GENERIC_WORDS = frozenset("""
able actually add added again ago already always another anyone anything anyway around ask asked away back bad
best better big bit come comes day days does doesnt dont done either else even ever every everything fine first
going gone good got great guy guys hang happen happened happens help here hour hours just keep kind last later
least left let like little long look looking lose lot make makes many maybe mean means might mine minute minutes
mistake much must never new next nothing now often old one ones other over own part pick put quick quickly quite
real really right run running said same saw say says see seems set show showed since so some someone something
sometimes soon still stuff sure take takes thing things think though time times today told tried try trying two
under unless until used usually very wait want wanted week weeks went while work works working yet yesterday
im ive id cant wont isnt arent didnt whats hows wheres theres its
""".split())


def identifiers(text: str) -> set[str]:
    """The verbatim-checkable spans of a text: code, URLs, quoted and bold labels, paths,
    file names, flags, numbers (with units) and mixed letter-digit tokens."""
    found: set[str] = set()
    rest = text
    for pattern in (_CODE, _URL, _QUOTED, _BOLD):
        for match in pattern.finditer(rest):
            value = next((g for g in match.groups() if g), None) if match.groups() else match.group(0)
            found.add((value or match.group(0)).strip().rstrip(".,;:") if pattern is _URL else (value or match.group(0)).strip())
        rest = pattern.sub(" ", rest)
    for pattern in (_PATH, _FILE, _FLAG, _EXTENSION, _MIXED):
        found.update(m.group(0).rstrip(".") for m in pattern.finditer(rest))
    found.update(m.group(0) for m in _ALLCAPS.finditer(rest) if m.group(0) not in _COMMON_CAPS)
    found.update(m.group(0).strip() for m in _NUMBER.finditer(rest))
    return {f for f in found if f and not f.isspace()}


def _squash(text: str) -> str:
    """Case, Markdown emphasis and spacing do not change a fact: compare without them."""
    text = text.replace("**", "").replace("`", "").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", text).lower()


def missing_identifiers(text: str, sources: Iterable[str]) -> set[str]:
    """Identifiers of `text` that appear in none of `sources`. A number must appear as a whole
    number (with its unit when it has one, "5GB" matching "5 GB"), not inside another."""
    haystack = " ".join(_squash(s) for s in sources)
    missing = set()
    for ident in identifiers(text):
        needle = _squash(ident)
        number = _NUMBER_WITH_UNIT.fullmatch(needle)
        if number:
            value, unit = number.group(1), number.group(2)
            forms = [f"{value} {unit}", f"{value}{unit}"] if unit else [value]
            if any(re.search(r"(?<!\d)(?<!\d[.,])" + re.escape(form) + r"(?![\d])", haystack) for form in forms):
                continue
        elif needle in haystack:
            continue
        missing.add(ident)
    return missing


_NUMBER_WITH_UNIT = re.compile(r"\$?(\d[\d,.]*\d|\d)%?\s?([a-z/]+)?")


def stem(word: str) -> str:
    """A crude stem (plural, -ing, -ed, -ly, then the first six letters) so "restoring files"
    meets "restore a file" and "refundable" meets "refund"."""
    word = word.split("'")[0]  # here's, you're, driftwood's
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "ly", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word.rstrip("e")[:6]


def content_terms(text: str) -> set[str]:
    """Stemmed words that carry meaning (no stopwords; "where's" is "where")."""
    return {stem(w) for w in _WORD.findall(text.lower()) if w.split("'")[0] not in STOPWORDS and len(w) > 1}


def subject_terms(text: str) -> set[str]:
    """The content words that say what a question is about: without everyday words like
    "still", "last week" or "back", which any page may or may not happen to use."""
    return {stem(w) for w in _WORD.findall(text.lower())
            if w.split("'")[0] not in STOPWORDS and w.split("'")[0] not in GENERIC_WORDS and len(w) > 1}


def supports(sentence: str, passage: str, min_overlap: float = 0.6) -> bool:
    """A passage supports a sentence when every identifier of the sentence is in it verbatim
    and most of the sentence's content words are its words too (the sentence says what the
    passage says, rephrased at most)."""
    if missing_identifiers(sentence, [passage]):
        return False
    terms = content_terms(_strip_markers(sentence))
    if not terms:
        return True
    return len(terms & content_terms(passage)) / len(terms) >= min_overlap


def _strip_markers(text: str) -> str:
    return re.sub(r"\[\d{1,3}(?:\s*,\s*\d{1,3})*\]", " ", text)


_SHELLISH = re.compile(r"\$\(|`|\$\{|\$[A-Z_]{3,}|&&|\|\||;\s*\w|\bDROP\s+TABLE\b|\bSELECT\s+\*|\bUNION\s+SELECT\b|"
                       r"\bOR\s+1\s*=\s*1\b|<script|/etc/|\.\./|\brm\s+-rf\b", re.IGNORECASE)
_PLAIN_WORD = re.compile(r"^[(\"']?[A-Za-z][a-z]*(?:'[a-z]+)?[)\"']?[?.,!:;]*$")


def is_noise(question: str) -> bool:
    """A question that is mostly symbols, shell or SQL fragments (a paste, a probe, a
    cat on the keyboard) has nothing to answer: fewer than two plain words, or plain words
    a minority among shell-like fragments."""
    tokens = question.split()
    if not tokens:
        return True
    plain = [t for t in tokens if _PLAIN_WORD.match(t) and t.strip("?.,!:;()\"'").lower() not in ("echo", "cat", "sudo")]
    letters = sum(c.isalpha() for c in question)
    symbols = sum(not (c.isalnum() or c.isspace()) for c in question)
    if letters == 0 or symbols > letters:
        return True
    if _SHELLISH.search(question):
        return len(plain) < max(3, 0.6 * len(tokens))
    return len(plain) == 0 and not _MIXED.search(question)
