"""Structure-aware chunking bounded in the embedder's own tokens.

Sections never share a chunk (the heading path is the chunk's title, embedded with it and
paid for from the same token budget). A long section is packed paragraph by paragraph, then
sentence by sentence, then token windows cut at word boundaries; each chunk after the first
repeats a small tail of the previous one so a fact cut at a boundary stays findable.

Every section is tokenized exactly once (token start offsets), and unit sizes are read off
those offsets, so chunking costs one batched tokenizer pass over the corpus.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from knowledge.documents import Chunk, Document

# For each text, the character offset where each of its tokens starts.
TokenOffsets = Callable[[list[str]], list[list[int]]]

CHUNKER_VERSION = 4  # 3: HTML page furniture (nav, footer, ARIA roles) no longer in the chunks;
# 4: a paragraph cut into sentences keeps its line breaks, a numbered item's number stays with it
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A sentence ends at . ! or ? before a capital, a digit or an opening mark, but not a numbered
# item's own number ("4. Choose ..." is one step, not "4." and a sentence).
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!^\d\.)(?<!^\d\d\.)(?<!^\d\d\d\.)\s+(?=[A-Z0-9\"'(\[`*-])", re.M)
_TOKENIZE_BATCH = 512


@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int = 200
    overlap_tokens: int = 32

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError("chunk max_tokens must be at least 16")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError("chunk overlap_tokens must be >= 0 and under half of max_tokens")

    def fingerprint(self) -> dict[str, int]:
        return {"max_tokens": self.max_tokens, "overlap_tokens": self.overlap_tokens, "version": CHUNKER_VERSION}


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    paragraph_start: bool  # rejoined with a blank line, not a space


class Chunker:
    def __init__(self, token_offsets: TokenOffsets, settings: ChunkSettings | None = None) -> None:
        self.token_offsets = token_offsets
        self.settings = settings or ChunkSettings()

    def chunk(self, document: Document) -> list[Chunk]:
        return self.chunk_many([document])[0]

    def chunk_many(self, documents: Sequence[Document]) -> list[list[Chunk]]:
        """Chunk documents with one batched tokenizer pass; returns chunks per document."""
        jobs: list[tuple[int, str, str, str | None]] = []  # (doc index, heading, section text, anchor)
        for i, doc in enumerate(documents):
            for section in doc.sections:
                jobs.append((i, " > ".join(h for h in section.heading_path if h), section.text, section.anchor))
        texts = [job[2] for job in jobs]
        prefixes = [self._prefix(documents[job[0]], job[1]) for job in jobs]
        offsets = self._offsets(texts)
        prefix_sizes = [len(o) for o in self._offsets(prefixes)]
        out: list[list[Chunk]] = [[] for _ in documents]
        for (i, heading, text, anchor), starts, prefix_tokens in zip(jobs, offsets, prefix_sizes):
            doc = documents[i]
            url = f"{doc.url}#{anchor}" if doc.url and anchor else doc.url
            budget = max(8, self.settings.max_tokens - prefix_tokens)
            for piece in self._split(text, starts, budget):
                chunks = out[i]
                chunks.append(Chunk(
                    collection=doc.collection, source=doc.source, title=doc.title, heading=heading,
                    text=piece, position=len(chunks), content_hash=doc.content_hash, mtime=doc.mtime,
                    url=url,
                ))
        return out

    @staticmethod
    def _prefix(doc: Document, heading: str) -> str:
        return Chunk(doc.collection, doc.source, doc.title, heading, "", 0, "", 0.0).search_text

    def _offsets(self, texts: list[str]) -> list[list[int]]:
        result: list[list[int]] = []
        for start in range(0, len(texts), _TOKENIZE_BATCH):
            result.extend(self.token_offsets(texts[start:start + _TOKENIZE_BATCH]))
        return result

    def _split(self, text: str, starts: list[int], limit: int) -> list[str]:
        def size(a: int, b: int) -> int:
            return bisect_left(starts, b) - bisect_left(starts, a)

        units = list(self._units(text, starts, limit, size))
        chunks: list[str] = []
        current: list[_Unit] = []
        used = 0
        for unit in units:
            if current and used + unit.tokens > limit:
                chunks.append(_join(text, current))
                current = self._overlap_tail(current)
                used = sum(u.tokens for u in current)
                if used + unit.tokens > limit:
                    current, used = [], 0
            current.append(unit)
            used += unit.tokens
        if current:
            chunks.append(_join(text, current))
        return [c for c in chunks if c.strip()]

    def _overlap_tail(self, units: list[_Unit]) -> list[_Unit]:
        """The last whole sentences of the previous chunk that fit the overlap budget."""
        tail: list[_Unit] = []
        budget = self.settings.overlap_tokens
        for unit in reversed(units):
            if unit.tokens > budget:
                break
            tail.insert(0, unit)
            budget -= unit.tokens
        return tail

    def _units(self, text: str, starts: list[int], limit: int, size: Callable[[int, int], int]):
        """Paragraph spans, or sentence / token-window spans of paragraphs too long for one chunk."""
        position = 0
        for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
            end = match.start() if match else len(text)
            p_start, p_end = _strip_span(text, position, end)
            position = match.end() if match else len(text)
            if p_start >= p_end:
                continue
            tokens = size(p_start, p_end)
            if tokens <= limit:
                yield _Unit(p_start, p_end, tokens, True)
                continue
            first = True
            s_pos = p_start
            for s_match in [*_SENTENCE_END.finditer(text, p_start, p_end), None]:
                s_end = s_match.start() if s_match else p_end
                a, b = _strip_span(text, s_pos, s_end)
                s_pos = s_match.end() if s_match else p_end
                if a >= b:
                    continue
                tokens = size(a, b)
                if tokens <= limit:
                    yield _Unit(a, b, tokens, first)
                else:
                    for wa, wb in _token_windows(text, starts, a, b, limit):
                        yield _Unit(wa, wb, size(wa, wb), first)
                        first = False
                first = False


def _token_windows(text: str, starts: list[int], a: int, b: int, limit: int):
    """Cut [a, b) into spans of at most `limit` tokens, preferring to cut before a space."""
    first = bisect_left(starts, a)
    last = bisect_left(starts, b)
    i = first
    while i < last:
        j = min(last, i + limit)
        if j < last:
            cut = j
            while cut > i + 1 and not text[starts[cut] - 1].isspace():
                cut -= 1
            j = cut if cut > i + 1 else j
        span_end = starts[j] if j < last else b
        wa, wb = _strip_span(text, starts[i], span_end)
        if wa < wb:
            yield wa, wb
        i = j


def _strip_span(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _join(text: str, units: list[_Unit]) -> str:
    """Units rejoined: a blank line before a paragraph; else a line break where the text had
    one (a long list's items, cut apart as sentences, stay lines of their own: joined with a
    space they read "3. Choose X. 4. Provide Y" as one step) and a space between sentences.
    The embedder and full-text search read any whitespace alike, so only the text read back
    (quotes, steps) changes."""
    out = text[units[0].start:units[0].end]
    for previous, unit in zip(units, units[1:]):
        gap = "\n" if "\n" in text[previous.end:unit.start] else " "
        out += ("\n\n" if unit.paragraph_start else gap) + text[unit.start:unit.end]
    return out
