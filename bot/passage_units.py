"""Splits a retrieved passage into the pieces an answer may quote whole: sentences, list
items, code blocks, table rows and preformatted blocks, in the document's order.

Why whole pieces: a fact cut in half is a wrong fact. A list item keeps its number, a code
block its fences, a table row its header, so what the answer quotes reads as the page does.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, replace

SENTENCE, ITEM, CODE, ROW, HEADER, PRE, LABEL = "sentence", "item", "code", "row", "header", "pre", "label"
FRAGMENT = "fragment"  # a sentence cut where the chunk was cut: never quoted
TITLE = "title"  # a heading inside the text (a sidebar's "TIP Incremental updates"): never quoted as a sentence

_FENCE = re.compile(r"^\s*(```|~~~)")
_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*+\u2022])\s+\S")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}")
_INDENTED = re.compile(r"^(?: {4,}|\t)\S")  # plain-text docs indent commands and examples
# aligned columns: two gaps of 2+ spaces, neither after a sentence's end (prose typed with two spaces after
# each period, as DocBook and plain-text docs keep it, "No.  Packages can be upgraded.  Debian has ...", is prose)
_PRE_LINE = re.compile(r"(?<=[^\s.!?]) {2,}\S.*?(?<=[^\s.!?]) {2,}\S|^\s*-{4,}\s+-{4,}")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "approx.", "incl.", "no.", "Mr.", "Dr.", "St.")
_LABELLED_LINE = re.compile(r"^\s*[A-Z][\w /&()'-]{0,40}:\s+\S")  # "Picture Mode: adjusts the picture ..."
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[`*])")


@dataclass(frozen=True)
class Unit:
    passage: int  # 1-based number of the passage it comes from
    index: int  # position within the passage
    kind: str
    text: str
    block: int  # units of one paragraph, list, table or code block share a block id
    words: int

    @property
    def ends_with_colon(self) -> bool:
        return self.text.rstrip("* ").endswith(":")


def split_units(text: str, passage: int) -> list[Unit]:
    units: list[Unit] = []
    block = 0

    def add(kind: str, piece: str) -> None:
        piece = piece.strip("\n")
        if piece.strip() and (kind in (CODE, PRE, HEADER) or re.search(r"\w", piece)):  # not "****" or "| |"
            units.append(Unit(passage, len(units), kind, piece, block, len(piece.split())))

    lines = text.splitlines()
    i = 0
    paragraph: list[str] = []

    def flush_paragraph() -> None:
        nonlocal block
        if paragraph:
            joined = " ".join(line.strip() for line in paragraph)
            sentences = split_sentences(joined)
            if len(sentences) == 1 and joined.endswith(":") and len(joined.split()) <= 12:
                add(LABEL, joined)
            elif len(paragraph) > 1 and all(_LABELLED_LINE.match(line) for line in paragraph):
                for line in paragraph:  # a run of "Label: text" lines reads as a list
                    add(ITEM, f"- {line.strip()}")
            elif len(joined.split()) <= 12 and not re.search(r"[.!?:;)\]\"'`*]$", joined) and units and \
                    not re.match(r"[a-z]", joined):
                add(TITLE, joined)  # short, unpunctuated, between other text: a heading, not a sentence
            else:
                for n, sentence in enumerate(sentences):
                    # a paragraph opening mid-sentence ("isteners per ...") begins where a chunk was cut
                    add(FRAGMENT if n == 0 and re.match(r"[a-z]{2,}[ ,;]", sentence) else SENTENCE, sentence)
            paragraph.clear()
            block += 1

    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            flush_paragraph()
            fence = _FENCE.match(line).group(1)
            body = [line]
            i += 1
            closed = False
            while i < len(lines) and not closed:
                body.append(lines[i])
                i += 1
                closed = lines[i - 1].strip().startswith(fence)
            if closed:  # a block the chunk cut in half is left out, not quoted open
                add(CODE, body[0].strip() + "\n" + textwrap.dedent("\n".join(body[1:])))
            block += 1
            continue
        if line.lstrip().startswith("|"):
            flush_paragraph()
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i].strip())
                i += 1
            has_header = len(rows) > 1 and _TABLE_SEPARATOR.match(rows[1].replace("|", " ").strip())
            for n, row in enumerate(rows):
                if has_header and n < 2:
                    continue
                add(ROW, row)
            if has_header:  # the header travels with any row the answer quotes
                units.append(Unit(passage, len(units), HEADER, rows[0] + "\n" + rows[1], block, 0))
            block += 1
            continue
        if not _ITEM.match(line) and (_PRE_LINE.search(line) or (not paragraph and _INDENTED.match(line))):
            flush_paragraph()
            rows = []
            while i < len(lines) and (not rows or lines[i].strip() and not _ITEM.match(lines[i]) and (
                    _PRE_LINE.search(lines[i]) or lines[i].startswith(("  ", "\t")))):  # the first line always: progress
                rows.append(lines[i])
                i += 1
            add(PRE, "```\n" + textwrap.dedent("\n".join(rows)) + "\n```")
            block += 1
            continue
        if _ITEM.match(line):
            flush_paragraph()
            item = [line.strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and not _ITEM.match(lines[i]) and not _FENCE.match(lines[i]) \
                    and (lines[i].startswith((" ", "\t")) or not lines[i].lstrip().startswith("|")):
                item.append(lines[i].strip())
                i += 1
            add(ITEM, " ".join(item))
            # consecutive items (blank lines between them, as HTML lists render) form one list
            j = i
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and _ITEM.match(lines[j]):
                i = j
            else:
                block += 1
            continue
        if not line.strip():
            flush_paragraph()
        elif not paragraph and line.rstrip().endswith(":") and len(line.split()) <= 8 and i + 1 < len(lines) \
                and lines[i + 1].strip():
            add(LABEL, line.strip())  # a heading shown as "Section:" right above its text
            block += 1
        else:
            paragraph.append(line)
        i += 1
    flush_paragraph()
    return _mark_cut_ends(units)


def _mark_cut_ends(units: list[Unit]) -> list[Unit]:
    """A passage ends where a chunk was cut: a last sentence with no closing punctuation is
    a fragment."""
    if units and units[-1].kind == SENTENCE and not re.search(r"[.!?:)\]\"'`*]$", units[-1].text):
        units[-1] = replace(units[-1], kind=FRAGMENT)
    return units


def split_sentences(text: str) -> list[str]:
    """Sentence bounds that respect abbreviations, versions (4.2.0) and code spans."""
    pieces, start = [], 0
    for match in _SENTENCE_BREAK.finditer(text):
        before = text[start:match.start()]
        if before.rstrip(" \"')]").endswith(_ABBREVIATIONS) or before.count("`") % 2:
            continue
        pieces.append(text[start:match.end()].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]
