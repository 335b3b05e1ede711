"""Word documents (.docx) through python-docx: heading styles open sections, list styles
become `- ` items, tables become `|` rows (header row first), in the document's own order."""

from __future__ import annotations

import io
import re
import zipfile

from knowledge.loader_base import LoadedText, LoadError, SectionBuilder, title_from_name

_HEADING_STYLE = re.compile(r"^(?:Heading|Überschrift|Titre|Título|Titolo)\s*(\d)$", re.I)


def load_docx(data: bytes, name: str, encodings: list[str]) -> LoadedText:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as err:
        raise LoadError(f"corrupt Word document ({type(err).__name__}: {str(err)[:100]})") from None
    builder = SectionBuilder()
    title = (document.core_properties.title or "").strip()
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            _table(block, builder)
            continue
        text = block.text.strip()
        if not text:
            continue
        style = block.style.name if block.style is not None else ""
        heading = _HEADING_STYLE.match(style)
        if style == "Title" or heading:
            level = 1 if style == "Title" else int(heading.group(1))
            title = title or (text if level == 1 else "")
            builder.heading(level, text)
        elif style.startswith("List"):
            builder.text(("1. " if "Number" in style else "- ") + text)
        else:
            builder.text(text)
            builder.text("")
    return LoadedText(title or title_from_name(name), builder.finish())


def _table(table, builder: SectionBuilder) -> None:
    rows = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if not cells or cells[-1] != text:  # a merged cell repeats across the columns it spans
                cells.append(text)
        if any(cells):
            rows.append(cells)
    builder.text("")
    for n, cells in enumerate(rows):
        builder.text("| " + " | ".join(cells) + " |")
        if n == 0 and len(rows) > 1:
            builder.text("|" + "|".join("---" for _ in cells) + "|")
    builder.text("")
