"""Markdown through a CommonMark parser (markdown-it-py), rendered back to plain Markdown text.

A line-by-line reader gets CommonMark's hard cases wrong: an indented code block read as
prose, `#` lines inside lists or HTML blocks taken for headings, reference links left as
`[text][1]` with their definitions indexed as text. markdown-it-py parses exactly as
CommonMark says; this module walks its tokens, opens a section at every heading, and writes
each block back as the Markdown the answer composer reads (fenced code, `- ` items, `|`
table rows), with inline HTML and backslash escapes gone and reference links resolved.
MDX (Docusaurus pages) is Markdown plus `import`/`export` lines and JSX components; those
are stripped and the text they wrap is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from markdown_it import MarkdownIt
from markdown_it.token import Token

from knowledge.loader_base import LoadedText, SectionBuilder, decode_text, title_from_name
from knowledge.wiki_exports import notion_title, page_title

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_FRONT_TITLE = re.compile(r"^title:\s*[\"']?(.*?)[\"']?\s*$", re.M)
_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def load_markdown(data: bytes, name: str, encodings: list[str]) -> LoadedText:
    text = decode_text(data, encodings).replace("\r\n", "\n")
    return load_markdown_text(text, name)


def load_mdx(data: bytes, name: str, encodings: list[str]) -> LoadedText:
    """MDX: ESM lines and JSX tags out, the text between tags kept."""
    return load_markdown_text(strip_mdx(decode_text(data, encodings).replace("\r\n", "\n")), name)


_ESM = re.compile(r"^(?:import|export)\b[^\n]*(?:\n(?![ \t]*\n)[^\n]*)*", re.M)  # to the next blank line
_JSX_TAG = re.compile(r"</?[A-Z][\w.]*(?:\s[^<>]*?)?/?>|<>|</>")
_JSX_EXPR = re.compile(r"^\s*\{/\*.*?\*/\}\s*$", re.M | re.S)  # {/* comments */}
_FENCED = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)")  # CommonMark: closed by a run of the same length


def strip_mdx(text: str) -> str:
    """Remove MDX's import/export statements, JSX comments and component tags (capitalised,
    as MDX requires), outside code fences; the children of a component stay as text."""
    front = _FRONT_MATTER.match(text)
    head, text = (text[:front.end()], text[front.end():]) if front else ("", text)
    pieces, last = [], 0
    for fence in _FENCED.finditer(text):
        pieces.append(_strip_jsx(text[last:fence.start()]))
        pieces.append(fence.group(0))
        last = fence.end()
    pieces.append(_strip_jsx(text[last:]))
    return head + "".join(pieces)


def _strip_jsx(text: str) -> str:
    """Tags out; lines inside a component lose their JSX indentation (else Markdown would
    read the component's indented text as a code block)."""
    text = _JSX_EXPR.sub("", _ESM.sub("", text))
    out: list[str] = []
    depth = 0
    for line in text.split("\n"):
        prose = _CODE_SPAN.sub(lambda span: " " * len(span.group(0)), line)  # `<Tabs>` in backticks is text
        tags = _JSX_TAG.findall(prose)
        out.append(_outside_code_spans(line, lambda part: _JSX_TAG.sub("", part)).strip()
                   if tags or depth > 0 else line)
        for tag in tags:
            if tag in ("<>", "</>"):
                depth += 1 if tag == "<>" else -1
            elif not tag.endswith("/>"):
                depth += -1 if tag.startswith("</") else 1
        depth = max(depth, 0)
    return "\n".join(out)


def _outside_code_spans(line: str, change) -> str:
    """`change` applied to the parts of a line outside its code spans."""
    pieces, last = [], 0
    for span in _CODE_SPAN.finditer(line):
        pieces += [change(line[last:span.start()]), span.group(0)]
        last = span.end()
    return "".join(pieces + [change(line[last:])])


def load_markdown_text(text: str, name: str) -> LoadedText:
    """Markdown already decoded (a notebook's cells, an MDX page without its JSX)."""
    title = ""
    front = _FRONT_MATTER.match(text)
    if front:
        text = text[front.end():]
        found = _FRONT_TITLE.search(front.group(1))
        title = found.group(1) if found else ""
    builder = SectionBuilder()
    tokens = _PARSER.parse(text)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            heading = inline_text(tokens[i + 1].children or [], plain=True).strip()
            level = int(token.tag[1])
            title = title or (heading if level == 1 else "")
            builder.heading(level, heading)
            i += 3
            continue
        end = _block_end(tokens, i)
        for line in _render(tokens[i:end], ""):
            builder.text(line)
        builder.text("")
        i = end
    return LoadedText(page_title(title, name) if notion_title(name) else title or title_from_name(name),
                      builder.finish())


def _block_end(tokens: list[Token], start: int) -> int:
    """Index just past the block that opens at `start` (its matching close)."""
    depth = 0
    for j in range(start, len(tokens)):
        depth += tokens[j].nesting
        if depth <= 0:
            return j + 1
    return len(tokens)


def _render(tokens: list[Token], indent: str) -> Iterator[str]:
    """One block's tokens as Markdown lines."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        if kind in ("fence", "code_block"):
            info = token.info.strip().split(" ")[0] if kind == "fence" else ""
            yield f"{indent}```{info}"
            yield from (indent + line for line in token.content.rstrip("\n").split("\n"))
            yield f"{indent}```"
        elif kind == "html_block":
            text = _html_text(token.content)
            if text:
                yield indent + text
        elif kind == "inline":
            for line in inline_text(token.children or []).split("\n"):
                yield indent + line
        elif kind in ("bullet_list_open", "ordered_list_open"):
            end = i + _block_end(tokens[i:], 0)
            yield from _render_list(tokens[i + 1:end - 1], indent, ordered=kind == "ordered_list_open",
                                    start=int(token.attrGet("start") or 1))
            i = end
            continue
        elif kind == "blockquote_open":
            end = i + _block_end(tokens[i:], 0)
            yield from (f"{indent}> {line[len(indent):]}" for line in _render(tokens[i + 1:end - 1], indent))
            i = end
            continue
        elif kind == "table_open":
            end = i + _block_end(tokens[i:], 0)
            yield from _render_table(tokens[i + 1:end - 1], indent)
            i = end
            continue
        elif kind == "paragraph_close" and i + 1 < len(tokens) and not tokens[i + 1].type.endswith("_close"):
            yield ""
        i += 1


def _render_list(tokens: list[Token], indent: str, ordered: bool, start: int) -> Iterator[str]:
    number = start
    i = 0
    while i < len(tokens):
        if tokens[i].type != "list_item_open":
            i += 1
            continue
        end = i + _block_end(tokens[i:], 0)
        marker = f"{number}. " if ordered else "- "
        lines = [line for line in _render(tokens[i + 1:end - 1], indent + " " * len(marker)) if line.strip()]
        if lines:
            yield indent + marker + lines[0][len(indent) + len(marker):]
            yield from lines[1:]
        number += 1
        i = end


def _render_table(tokens: list[Token], indent: str) -> Iterator[str]:
    row: list[str] = []
    for token in tokens:
        if token.type == "tr_open":
            row = []
        elif token.type == "inline":
            row.append(inline_text(token.children or []).replace("\n", " ").strip())
        elif token.type == "tr_close":
            yield f"{indent}| " + " | ".join(row) + " |"
        elif token.type == "thead_close":
            yield f"{indent}|" + "|".join("---" for _ in row) + "|"


def inline_text(children: list[Token], plain: bool = False) -> str:
    """Inline tokens as Markdown (links resolved to `[text](url)`), or for headings without
    link and emphasis markup (code spans keep their backticks, as the line reader kept them);
    inline HTML is dropped, escapes are already undone by the parser."""
    out: list[str] = []
    hrefs: list[str] = []
    for child in children:
        kind = child.type
        if kind == "text":
            out.append(child.content)
        elif kind == "code_inline":
            out.append(f"`{child.content}`")
        elif kind in ("softbreak", "hardbreak"):
            out.append(" " if plain else "\n")
        elif kind == "image":
            out.append(child.content or inline_text(child.children or [], plain=True))
        elif plain or kind == "html_inline":
            continue
        elif kind == "link_open":
            hrefs.append(str(child.attrGet("href") or ""))
            out.append("[")
        elif kind == "link_close":
            out.append(f"]({hrefs.pop() if hrefs else ''})")
        elif kind in ("strong_open", "strong_close", "em_open", "em_close", "s_open", "s_close"):
            out.append(child.markup)
    return "".join(out)


def _html_text(html: str) -> str:
    """An HTML block's text (a <details> body, a centred note); comments and tags dropped."""
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(html, "html.parser")
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in soup.find_all(["script", "style"]):
        tag.decompose()
    return re.sub(r"\s+", " ", soup.get_text(" ")).strip()
