"""Plain data that flows through the knowledge pipeline (no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path, e.g. ("Install", "Windows")."""

    heading_path: tuple[str, ...]
    text: str
    anchor: str | None = None  # the heading's id on its page (None: slugged from the heading, or none)


@dataclass(frozen=True)
class Document:
    """One loaded source file, split into its heading structure."""

    collection: str
    source: str  # path relative to its docs root, with forward slashes
    title: str
    sections: list[Section]
    content_hash: str
    mtime: float
    url: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A bounded piece of a document: the unit that is embedded and retrieved."""

    collection: str
    source: str
    title: str
    heading: str  # heading path joined with " > "
    text: str
    position: int
    content_hash: str
    mtime: float
    url: str | None = None

    @property
    def chunk_id(self) -> str:
        return f"{self.collection}:{self.source}#{self.position}"

    @property
    def search_text(self) -> str:
        """What is embedded and full-text indexed: where it sits, then what it says."""
        return f"{self.location}\n{self.text}"

    @property
    def location(self) -> str:
        """Title and heading path without repeating the title when the path starts with it."""
        return heading_location(self.title, self.heading)


def heading_location(title: str, heading: str) -> str:
    if not heading or heading == title:
        return title
    if heading.startswith(title + " > "):
        return heading
    return f"{title} > {heading}"


@dataclass(frozen=True)
class SkippedFile:
    source: str
    reason: str


@dataclass
class DocsRoot:
    """A folder of docs; `name` scopes its documents (collection) and must be unique."""

    path: Path
    name: str = ""
    url_base: str | None = None
    exclude: list[str] = field(default_factory=list)
    anchors: str = "github"  # how headings become URL anchors (knowledge.anchors); "none": page URL only
    page_urls: dict[str, str] | None = None  # a crawled website's mirror: source -> the page's URL

    def __post_init__(self) -> None:
        self.path = Path(self.path).expanduser().resolve()
        if not self.name:
            self.name = self.path.name or "docs"
