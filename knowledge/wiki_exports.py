"""Wiki exports unzipped into a docs folder: Confluence's HTML space export and Notion's
Markdown/HTML export. Their pages are ordinary HTML or Markdown; what they add is where a
page sits (Confluence's breadcrumbs, Notion's nested `Title <id>/` folders), which becomes
the page's title path ("Engineering › Onboarding › Accounts"), and attachment folders,
which are not documents and are passed over without a skip line each.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

TRAIL = " › "
# Notion names every page file and folder "<title> <32 hex digits>".
_NOTION_ID = re.compile(r"\s+[0-9a-f]{32}$")
# Confluence puts attachments, icons and its stylesheet beside the pages.
_CONFLUENCE_ASSETS = {"attachments", "images", "styles"}


def notion_title(segment: str) -> str | None:
    """'Onboarding 0123...cdef.md' -> 'Onboarding'; None when not a Notion name."""
    stem = PurePosixPath(segment).stem if "." in segment else segment
    return _NOTION_ID.sub("", stem).strip() if _NOTION_ID.search(stem) else None


def notion_trail(source: str) -> list[str]:
    """Titles of the Notion pages a page is nested under, outermost first."""
    return [title for title in (notion_title(part) for part in PurePosixPath(source).parts[:-1]) if title]


def page_title(title: str, source: str) -> str:
    """A Notion page's title with the titles of the pages above it."""
    own = notion_title(PurePosixPath(source).name)
    if own is None:
        return title
    return TRAIL.join([*notion_trail(source), title or own])


def confluence_page(soup: Any) -> tuple[str, Any] | None:
    """(title path, main content element) of a Confluence export page, else None."""
    main = soup.find(id="main-content")
    title_el = soup.find(id="title-text")
    if main is None or title_el is None:
        return None
    title = title_el.get_text(" ", strip=True)
    space, sep, own = title.partition(" : ")
    title = own if sep else title
    crumbs = [a.get_text(" ", strip=True) for a in soup.select("#breadcrumbs li a")]
    trail = [c for c in crumbs if c and c != title]
    return TRAIL.join([*trail, title]), main


def is_attachment(source: str, has_loader: bool) -> bool:
    """A file of an export that is not a page: under a Confluence asset folder, or a
    non-document file inside a Notion page's folder."""
    if has_loader:
        return False
    parts = PurePosixPath(source).parts[:-1]
    if any(part in _CONFLUENCE_ASSETS for part in parts):
        return True
    return any(notion_title(part) for part in parts)
