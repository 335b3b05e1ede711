"""Heading anchors as the common docs generators write them, so a citation of a folder or
git source with a `url_base` links to the section, not just the page.

Styles (the setting `anchors` of a docs source):
- "github": GitHub's and Docusaurus's slugger (github-slugger): lower case, punctuation
  removed, every space a hyphen; a repeated slug gets -1, -2, ...
- "mkdocs": Python-Markdown's toc extension (MkDocs): accents folded to ASCII, punctuation
  removed, runs of spaces and hyphens one hyphen; a repeat gets _1, _2, ...
- "sphinx": docutils' `make_id` (Sphinx, reStructuredText): lower case, runs of other
  characters one hyphen.
- "none": no anchors (the page URL alone).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace

from knowledge.documents import Section

ANCHOR_STYLES = ("github", "mkdocs", "sphinx", "none")
DEFAULT_STYLE = "github"

# github-slugger removes every character outside letters, marks, numbers, connector
# punctuation, spaces and hyphens; Python's \w covers letters, marks, digits and '_'.
_GITHUB_DROP = re.compile(r"[^\w\- ]", re.UNICODE)
_MKDOCS_DROP = re.compile(r"[^\w\s-]")
_MKDOCS_JOIN = re.compile(r"[-\s]+")


def _github(text: str) -> str:
    return _GITHUB_DROP.sub("", text.lower()).replace(" ", "-")


def _mkdocs(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _MKDOCS_JOIN.sub("-", _MKDOCS_DROP.sub("", ascii_text).strip().lower())


def _sphinx(text: str) -> str:
    from docutils.nodes import make_id

    return make_id(text)


class Slugger:
    """Slugs the headings of one page in order, numbering repeats as the style does."""

    def __init__(self, style: str = DEFAULT_STYLE) -> None:
        if style not in ANCHOR_STYLES:
            raise ValueError(f"unknown anchor style {style!r}; use one of {', '.join(ANCHOR_STYLES)}")
        self.style = style
        self.seen: dict[str, int] = {}

    def slug(self, heading: str) -> str | None:
        if self.style == "none" or not heading.strip():
            return None
        base = {"github": _github, "mkdocs": _mkdocs, "sphinx": _sphinx}[self.style](heading.strip())
        if not base:
            return None
        count = self.seen.get(base, 0)
        self.seen[base] = count + 1
        if count == 0 or self.style == "sphinx":
            return base
        return f"{base}-{count}" if self.style == "github" else f"{base}_{count}"


def slug_anchors(headings: Iterable[str], style: str = DEFAULT_STYLE) -> list[str | None]:
    """Anchors for a page's headings in document order."""
    slugger = Slugger(style)
    return [slugger.slug(h) for h in headings]


def with_anchors(sections: list[Section], style: str) -> list[Section]:
    """Sections with an anchor slugged from their own heading where the loader found none
    (a page's own ids, from HTML, are kept). Repeats are numbered over the page's sections
    in order, as the generators number them (a repeated heading with no text of its own
    is not counted, so a later twin may be off by one)."""
    slugger = Slugger(style)
    out = []
    for section in sections:
        anchor = section.anchor
        if anchor is None and section.heading_path and style != "none":
            anchor = slugger.slug(section.heading_path[-1])
        out.append(replace(section, anchor=anchor) if anchor != section.anchor else section)
    return out
