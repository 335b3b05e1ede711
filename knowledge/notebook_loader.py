"""Jupyter notebooks: Markdown cells as Markdown (their headings open sections), code cells
as fenced code in the notebook's language. Outputs are left out: they are results of one
run (tables of numbers, images, tracebacks), not documentation. nbformat reads every
notebook format version and upgrades it to v4."""

from __future__ import annotations

from knowledge.loader_base import LoadedText, LoadError, decode_text
from knowledge.markdown_loader import load_markdown_text


def load_notebook(data: bytes, name: str, encodings: list[str]) -> LoadedText:
    import nbformat
    from nbformat.reader import NotJSONError

    try:
        notebook = nbformat.reads(decode_text(data, encodings), as_version=4)
    except (NotJSONError, ValueError, KeyError, AttributeError, TypeError) as err:
        raise LoadError(f"not a Jupyter notebook ({type(err).__name__}: {str(err)[:100]})") from None
    metadata = notebook.get("metadata", {})
    language = (metadata.get("kernelspec", {}).get("language") or metadata.get("language_info", {}).get("name")
                or "python")
    parts = []
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if not source.strip():
            continue
        if cell.get("cell_type") == "markdown":
            parts.append(source.strip())
        elif cell.get("cell_type") == "code":
            parts.append(f"```{language}\n{source.rstrip()}\n```")
    return load_markdown_text("\n\n".join(parts) + "\n", name)
