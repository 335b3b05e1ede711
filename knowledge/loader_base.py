"""What every loader shares: the skip reason, the loaded shape, text decoding and the
heading stack that turns a stream of headings and lines into sections."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from knowledge.documents import Section


class LoadError(Exception):
    """A file that cannot be indexed; str(err) is the reason shown to the user."""


@dataclass(frozen=True)
class LoadedText:
    title: str
    sections: list[Section]


Loader = Callable[[bytes, str, list[str]], LoadedText]

_BINARY_SNIFF = 8192


def decode_text(data: bytes, encodings: list[str]) -> str:
    """Decode with a BOM if there is one, else the configured encodings in order."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise LoadError(f"invalid UTF-16 text ({err.reason})") from None
    if b"\x00" in data[:_BINARY_SNIFF]:
        raise LoadError("binary content (NUL bytes) in a text file")
    first_error: UnicodeDecodeError | None = None
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as err:
            first_error = first_error or err
        except LookupError:
            raise LoadError(f"unknown encoding {encoding!r} in config") from None
    assert first_error is not None
    raise LoadError(
        f"not valid {'/'.join(encodings)} text (byte 0x{data[first_error.start]:02x} at offset "
        f"{first_error.start}); save it as UTF-8 or add its encoding to index.encodings"
    )


def title_from_name(name: str) -> str:
    stem = Path(name).stem.replace("-", " ").replace("_", " ").strip()
    return stem[:1].upper() + stem[1:] if stem else name


def clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class SectionBuilder:
    """Collects text under a heading stack; headings of level n replace levels >= n. A
    heading may carry its anchor (the id a page gives it), which its section keeps."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []
        self.anchor: str | None = None
        self.lines: list[str] = []
        self.sections: list[Section] = []

    def heading(self, level: int, title: str, anchor: str | None = None) -> None:
        self.flush()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title.strip()))
        self.anchor = anchor or None

    def text(self, line: str) -> None:
        self.lines.append(line)

    def code(self, body: str, language: str = "") -> None:
        """A code block, fenced as the Markdown loader keeps it, so answers quote it verbatim."""
        body = body.strip("\n")
        if body.strip():
            self.lines += [f"```{language}", body, "```", ""]

    def flush(self) -> None:
        body = clean_text("\n".join(self.lines))
        if body:
            self.sections.append(Section(tuple(t for _, t in self.stack), body, self.anchor))
        self.lines = []

    def finish(self) -> list[Section]:
        self.flush()
        return self.sections
