"""A page heading's own text and its anchor, as docs generators write them.

Generators put the id a heading is linked by in one of three places: on the heading
(`<h2 id="install">`, MkDocs, Docusaurus), on the section that opens with it (`<section
id="install"><h2>`, Sphinx), or only in the permalink inside it (`<a class="headerlink"
href="#install">¶</a>`). The permalink's glyph is not part of the heading's text.
"""

from __future__ import annotations

from typing import Any

_GLYPHS = {"¶", "#", "§", "🔗", "⚓", "#︎"}


def _permalinks(heading: Any) -> list[Any]:
    links = []
    for link in heading.find_all("a", href=True):
        href = str(link["href"])
        classes = " ".join(link.get("class") or [])
        if href.startswith("#") and (link.get_text(strip=True) in _GLYPHS or not link.get_text(strip=True)
                                     or "headerlink" in classes or "anchor" in classes):
            links.append(link)
    return links


def heading_anchor(heading: Any) -> str | None:
    """The id that links to `heading` (a BeautifulSoup tag), or None when it has none."""
    if heading.get("id"):
        return str(heading["id"])
    for link in _permalinks(heading):
        return str(link["href"])[1:] or None
    parent = heading.parent
    while parent is not None and parent.name not in (None, "body", "[document]"):
        if parent.get("id"):
            first = parent.find(["h1", "h2", "h3", "h4", "h5", "h6"])
            return str(parent["id"]) if first is heading else None
        if parent.find(["h1", "h2", "h3", "h4", "h5", "h6"]) is not heading:
            return None
        parent = parent.parent
    return None


def drop_permalinks(heading: Any) -> None:
    """Remove permalink glyphs from `heading` so its text is the heading alone."""
    for link in _permalinks(heading):
        link.decompose()
