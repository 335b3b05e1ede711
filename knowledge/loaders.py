"""Per-format loaders: bytes on disk -> (title, sections), or a clear reason to skip.

Every failure is a `LoadError` carrying a message a user can act on; the indexer reports it
and moves on, so one bad file never aborts a run.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from knowledge.documents import Section
from knowledge.loader_base import (  # noqa: F401  (LoadedText, decode_text: this module's public names)
    LoadedText,
    LoadError,
    Loader,
    SectionBuilder,
    clean_text,
    decode_text,
    title_from_name,
)
from knowledge.docx_loader import load_docx
from knowledge.markdown_loader import load_markdown, load_mdx
from knowledge.notebook_loader import load_notebook
from knowledge.wiki_exports import confluence_page, notion_title
from knowledge.wiki_exports import page_title as wiki_page_title

log = logging.getLogger(__name__)

# Bump when extraction changes what text a file yields: stored chunks are then rebuilt.
# 3: Markdown through CommonMark (markdown-it-py), HTML <pre> as fenced code, heading anchors,
#    MDX, Word and Jupyter notebooks.
# 4: HTML ordered lists numbered ("1. ").
# 5: HTML inline elements run on as written ("released, so", not "released , so").
LOADERS_VERSION = 5


def load_plain_text(data: bytes, name: str, encodings: list[str]) -> LoadedText:
    """Plain text: first line is the title; underlined or ALL-CAPS short lines are headings."""
    lines = decode_text(data, encodings).replace("\r\n", "\n").split("\n")
    builder = SectionBuilder()
    title = ""
    skip_next = False
    for i, line in enumerate(lines):
        if skip_next:
            skip_next = False
            continue
        stripped = line.strip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        underlined = bool(stripped) and len(nxt) >= 3 and re.fullmatch(r"(=+|-+|~+)", nxt) is not None
        shouting = (
            stripped.isupper() and 2 < len(stripped) <= 80 and not stripped.endswith((".", ","))
            and re.search(r"[A-Z]{2}", stripped) is not None
        )
        if not title and stripped:
            title = stripped
            skip_next = underlined
            builder.heading(1, stripped)
            continue
        if underlined or shouting:
            level = 2 if (underlined and nxt.startswith("=")) or shouting else 3
            builder.heading(level, stripped)
            skip_next = underlined
            continue
        builder.text(line)
    return LoadedText(title or title_from_name(name), builder.finish())


def load_rst(data: bytes, name: str, encodings: list[str]) -> LoadedText:
    """reStructuredText through docutils' own parser, so section levels come out right."""
    from docutils import nodes
    from docutils.core import publish_doctree

    text = decode_text(data, encodings)
    try:
        doctree = publish_doctree(
            text,
            settings_overrides={
                "report_level": 5, "halt_level": 5, "file_insertion_enabled": False,
                "raw_enabled": False, "warning_stream": io.StringIO(),
                "doctitle_xform": False,
            },
        )
    except Exception as err:  # docutils raises many types on malformed markup
        raise LoadError(f"unparsable reStructuredText ({type(err).__name__}: {err})") from None
    sections: list[Section] = []

    def walk(node: nodes.Element, path: tuple[str, ...]) -> None:
        own: list[str] = []
        for child in node.children:
            if isinstance(child, nodes.section):
                continue
            if isinstance(child, (nodes.title, nodes.system_message, nodes.comment)):
                continue
            own.append(child.astext())
        body = clean_text("\n\n".join(own))
        if body:
            sections.append(Section(path, body))
        for child in node.children:
            if isinstance(child, nodes.section):
                title_nodes = [c for c in child.children if isinstance(c, nodes.title)]
                heading = title_nodes[0].astext() if title_nodes else ""
                walk(child, path + (heading,))

    walk(doctree, ())
    title = next((s.heading_path[0] for s in sections if s.heading_path), "") or title_from_name(name)
    return LoadedText(title, sections)


_HTML_DROP = ["script", "style", "nav", "footer", "header", "aside", "noscript", "template", "form"]
_HTML_BLOCKS = ["p", "li", "pre", "td", "th", "dt", "dd", "blockquote", "figcaption", "caption"]
_HTML_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
# Page furniture marked as such without its own element: ARIA landmark roles, and the id or
# class "footer" that asciidoc ("Last updated ..." on every page), Sphinx and DocBook write.
_HTML_FURNITURE_ROLES = {"navigation", "banner", "contentinfo", "search"}


def _furniture(tag) -> bool:
    return (tag.get("role") in _HTML_FURNITURE_ROLES or tag.get("id") == "footer"
            or "footer" in (tag.get("class") or []))


def load_html(data: bytes, name: str, encodings: list[str]) -> LoadedText:
    from bs4 import BeautifulSoup

    from knowledge.html_headings import drop_permalinks, heading_anchor

    soup = BeautifulSoup(decode_text(data, encodings), "html.parser")
    for tag in soup.find_all(_HTML_DROP) + soup.find_all(_furniture):
        if not tag.decomposed:  # not inside one already dropped
            tag.decompose()
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    root = soup.body or soup
    confluence = confluence_page(soup)
    if confluence is not None:  # a page of a Confluence export: its own content, titled by its place
        page_title, root = confluence
    builder = SectionBuilder()
    title = ""
    wanted = set(_HTML_HEADINGS + _HTML_BLOCKS + ["div"])
    for el in root.find_all(list(wanted)):
        if el.name in _HTML_HEADINGS:
            anchor = heading_anchor(el)
            drop_permalinks(el)
            heading = el.get_text(" ", strip=True)
            if heading:
                title = title or (heading if el.name == "h1" else "")
                builder.heading(int(el.name[1]), heading, anchor)
            continue
        if el.find_parent(_HTML_BLOCKS):
            continue  # already taken with its enclosing block
        if el.name == "pre":
            builder.code(el.get_text(""))
            continue
        if el.name == "div":
            text = _div_paragraph(el)  # DocBook, Publican and Sphinx write paragraphs as <div class="para">
        else:
            text = _inline_text(el)
        if text:
            builder.text((_list_marker(el) if el.name == "li" else "") + text)
            builder.text("")
    sections = builder.finish()
    if not sections:
        loose = clean_text(root.get_text("\n", strip=True))
        if loose:
            sections = [Section((), loose)]
    if confluence is not None:
        return LoadedText(page_title, sections)
    if notion_title(name):
        return LoadedText(wiki_page_title(title or page_title, name), sections)
    return LoadedText(title or page_title or title_from_name(name), sections)


_HTML_BREAKS = frozenset(_HTML_BLOCKS + _HTML_HEADINGS + [
    "br", "div", "ul", "ol", "dl", "table", "tr", "section", "article", "hr", "figure", "details", "summary"])


def _inline_text(element) -> str:
    """A block's text as it reads: inline elements run on as written ("we have
    <em>released</em>, so" is "we have released, so", not "released , so"), a line break or a
    nested block parts words, and runs of whitespace are one space. Read in document order,
    without recursion, so no nesting depth can break it."""
    from bs4 import Comment, NavigableString, Tag

    parts: list[str] = []
    for node in element.descendants:
        if isinstance(node, Comment):
            continue
        after = node.previous_sibling
        if (isinstance(node, Tag) and node.name in _HTML_BREAKS) or (
                isinstance(after, Tag) and after.name in _HTML_BREAKS):
            parts.append(" ")
        if isinstance(node, NavigableString):
            parts.append(str(node))
    return " ".join("".join(parts).split())


def _list_marker(item) -> str:
    """"3. " for the third item of an ordered list (its `start` counted in), so a procedure's steps
    read as steps, as in Markdown; "- " for any other item."""
    parent = item.parent
    if parent is None or parent.name != "ol":
        return "- "
    try:
        start = int(parent.get("start", 1))
    except ValueError:
        start = 1
    siblings = parent.find_all("li", recursive=False)
    position = next((n for n, li in enumerate(siblings) if li is item), 0)
    return f"{start + position}. "


def _div_paragraph(div) -> str:
    """The prose a <div> holds itself: its text and inline elements, without the blocks
    nested in it (lists, code, other divs), which are read on their own. A div holding
    only blocks (a layout wrapper) holds no prose."""
    from bs4 import Comment, NavigableString

    strings = [c for c in div.children if isinstance(c, NavigableString) and not isinstance(c, Comment)]
    if not any(c.strip() for c in strings):
        return ""
    parts = []
    for child in div.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            parts.append(str(child))
        elif child.name not in _HTML_BLOCKS and child.name not in ("div", "ul", "ol", "dl", "table") \
                and not child.find(_HTML_BLOCKS + ["div"]):
            parts.append(child.get_text())
    return " ".join("".join(parts).split())


def load_pdf(data: bytes, name: str, encodings: list[str]) -> LoadedText:
    """PDF text per page; pages become sections since PDFs carry no reliable headings."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.startswith(b"%PDF"):
        raise LoadError("corrupt PDF (missing %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoadError("encrypted PDF; export an unprotected copy to index it")
        meta_title = reader.metadata.title if reader.metadata else None
        meta_title = meta_title if isinstance(meta_title, str) else ""  # some writers put a number there
        pages = [(i + 1, clean_text(page.extract_text() or "")) for i, page in enumerate(reader.pages)]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as err:
        raise LoadError(f"corrupt PDF ({type(err).__name__}: {err})") from None
    title = meta_title.strip()
    if not title:
        first = next((t for _, t in pages if t), "")
        title = first.split("\n", 1)[0].strip()[:120] if first else title_from_name(name)
    sections = [Section((title, f"Page {n}"), text) for n, text in pages if text]
    return LoadedText(title, sections)


LOADERS: dict[str, Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".mdx": load_mdx,
    ".rst": load_rst,
    ".txt": load_plain_text,
    ".text": load_plain_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".ipynb": load_notebook,
}


def load_file(path: Path, name: str, encodings: list[str], max_bytes: int,
              loader: Loader | None = None) -> tuple[LoadedText, bytes]:
    """Load one file (with `loader`, else the one its extension names), or raise LoadError
    saying why it was skipped."""
    loader = loader or LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise LoadError(f"too large ({size / 1e6:.1f} MB > limit {max_bytes / 1e6:.1f} MB)")
        data = path.read_bytes()
    except OSError as err:
        raise LoadError(f"unreadable ({err.strerror or err})") from None
    if not data.strip():
        raise LoadError("empty file")
    try:
        loaded = loader(data, name, encodings)
    except LoadError:
        raise
    except Exception as err:  # a parser's bug on one odd file is that file's skip reason, not the run's end
        log.debug("loader failed on %s", name, exc_info=True)
        raise LoadError(f"could not be parsed ({type(err).__name__}: {str(err)[:120]})") from None
    if not any(s.text.strip() for s in loaded.sections):
        raise LoadError("no text content")
    return loaded, data
