"""A crawled web page's main content: trafilatura finds it, headings become sections.

trafilatura (maintained, used by HF's FineWeb and many crawlers) separates a page's content
from its navigation, sidebars, footers and cookie banners by the page's own structure and
text density, not by site-specific rules. Its XML output keeps headings (`<head
rend="h2">`), paragraphs, lists, tables and code blocks apart, which is what sections need.
It drops the ids headings are linked by, so those are read from the page itself
(BeautifulSoup) and matched to the extracted headings by their text, in order.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from knowledge.loader_base import LoadedText, LoadError, SectionBuilder, decode_text, title_from_name

_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_SPACE = re.compile(r"\s+")


def load_web_page(data: bytes, name: str, encodings: list[str]) -> LoadedText:
    """The page's title and its main content as sections with their anchors."""
    import trafilatura
    from bs4 import BeautifulSoup
    from lxml import etree

    from knowledge.html_headings import drop_permalinks, heading_anchor

    soup = BeautifulSoup(decode_text(data, ["utf-8", *encodings]), "lxml")
    anchors: list[tuple[str, str | None]] = []
    for heading in soup.find_all(_HEADINGS):
        anchor = heading_anchor(heading)
        drop_permalinks(heading)
        anchors.append((_key(heading.get_text(" ")), anchor))
    drop_permalinks(soup)  # definition terms (API entries) carry permalinks too
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    extracted = trafilatura.extract(str(soup), output_format="xml", include_tables=True, include_comments=False,
                                    include_images=False, include_links=False, include_formatting=False,
                                    favor_recall=True, deduplicate=False)
    if not extracted:
        raise LoadError("no main content found on the page")
    main = etree.fromstring(extracted.encode("utf-8")).find("main")
    if main is None:
        raise LoadError("no main content found on the page")
    builder = SectionBuilder()
    title = ""
    cursor = 0
    for element in main:
        if element.tag == "head":
            heading = _text(element)
            if not heading:
                continue
            anchor, cursor = _anchor_for(heading, anchors, cursor)
            level = int(str(element.get("rend", "h2"))[1:] or 2) if str(element.get("rend", "")).startswith("h") else 2
            title = title or (heading if level == 1 else "")
            builder.heading(level, heading, anchor)
        else:
            _block(element, builder)
    sections = builder.finish()
    if not sections:
        raise LoadError("no main content found on the page")
    return LoadedText(title or _first_part(page_title) or title_from_name(name), sections)


def page_digest(loaded: LoadedText) -> str:
    """A crawled page's content hash: a page's markup changes with every build of a site (dates,
    asset hashes), so what is compared is the text it yields."""
    return hashlib.sha256(repr((loaded.title, loaded.sections)).encode("utf-8")).hexdigest()


def same_page_text(old: bytes, new: bytes, name: str) -> bool:
    """Whether two builds of a page yield the same text (its markup alone changed)."""
    try:
        return page_digest(load_web_page(old, name, [])) == page_digest(load_web_page(new, name, []))
    except LoadError:
        return False


def _anchor_for(heading: str, anchors: list[tuple[str, str | None]], cursor: int) -> tuple[str | None, int]:
    """The anchor of the next page heading with this text (headings come in page order)."""
    key = _key(heading)
    for i in range(cursor, len(anchors)):
        if anchors[i][0] == key:
            return anchors[i][1], i + 1
    return None, cursor


def _block(element: Any, builder: SectionBuilder) -> None:
    tag = element.tag
    if tag == "code":
        builder.code("".join(element.itertext()))
        return
    if tag == "list":
        ordered = element.get("rend") == "ol"
        texts = [text for text in (_item_text(item) for item in element.findall("item")) if text]
        for number, text in enumerate(texts, 1):
            builder.text((f"{number}. " if ordered else "- ") + text)
        builder.text("")
        return
    if tag == "table":
        rows = [[_text(cell) for cell in row.iter("cell")] for row in element.iter("row")]
        rows = [row for row in rows if any(row)]
        for n, row in enumerate(rows):
            builder.text("| " + " | ".join(row) + " |")
            if n == 0 and len(rows) > 1 and any(c.get("role") == "head" for c in element.iter("cell")):
                builder.text("|" + "|".join("---" for _ in row) + "|")
        builder.text("")
        return
    text = _text(element)
    if text:
        builder.text(("> " if tag == "quote" else "") + text)
        builder.text("")


def _text(element: Any) -> str:
    return _SPACE.sub(" ", "".join(element.itertext())).strip()


def _item_text(item: Any) -> str:
    """A list item's words, a list nested in it read inside it, its entries apart."""
    parts = [item.text or ""]
    for child in item:
        if child.tag == "list":
            parts.append(" " + " ".join(_item_text(sub) for sub in child.findall("item")) + " ")
        else:
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


def _key(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def _first_part(page_title: str) -> str:
    """'Refunds — Acme Docs' -> 'Refunds': the site's name is not the page's title."""
    return re.split(r"\s+[|—–-]\s+", page_title, maxsplit=1)[0].strip()
