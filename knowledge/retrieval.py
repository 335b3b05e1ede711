"""Hybrid retrieval: vector search + BM25 full-text search, fused per document.

Both searches return chunk candidates; every candidate gets an exact cosine score (FTS hits
carry their vectors) and a BM25 score normalised by the query's best BM25 hit. No weight is
fixed per corpus: BM25's share adapts to each question by how much of it the best lexical
hits actually contain. A question asked in the docs' own words (every content word found)
trusts BM25 up to `text_weight`; a paraphrase or a symptom ("my files vanished") whose words
the docs do not use leans on meaning, where BM25 only matches its common words. Each chunk
also inherits a small share of its page's opening chunk similarity (what the page as a whole
is about), which keeps a short section from outranking the page it belongs to. A document's
score is its best chunk's; one passage per document comes back, so the top k are k pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


from bot.grounding import content_terms, subject_terms
from knowledge.documents import heading_location
from knowledge.embedding import Embedder
from knowledge.store import ChunkStore

# Tokens mixing letters and digits (error codes DW-1042, instance types d2.xlarge, EC2): a
# verbatim match is strong evidence. Bare numbers (years, counts) are too common to count.
_IDENTIFIER = re.compile(r"\b(?=[\w.-]*\d)(?=[\w.-]*[A-Za-z])[A-Za-z0-9][\w.-]*[A-Za-z0-9]")


@dataclass(frozen=True)
class RetrievalSettings:
    candidates: int = 100
    text_weight: float = 0.4  # BM25's share when a top lexical hit holds every content word of the question
    page_weight: float = 0.1  # share of the page's opening-chunk similarity every chunk of the page gets
    coverage_hits: int = 3  # the best BM25 hits read to measure how much of the question they hold
    min_similarity: float = 0.40  # calibrated on in-scope vs off-topic sets of three corpora (bench_retrieval)
    min_covered_similarity: float = 0.25  # ... or this, when the chunk holds every subject word of the question
    identifier_boost: float = 0.15  # added when a query identifier (error code, version) appears verbatim
    chunks_per_document: int = 2  # a passage may join a document's best chunks ...
    companion_ratio: float = 0.85  # ... when the next one scores at least this share of the best
    section_neighbours: tuple[int, ...] = (-1, 1)  # each chosen chunk is read with these neighbours of its section

    def __post_init__(self) -> None:
        if self.candidates < 1:
            raise ValueError("retrieval candidates must be >= 1")
        if not 0 <= self.text_weight <= 1:
            raise ValueError("retrieval text_weight must be between 0 and 1")
        if self.page_weight < 0:
            raise ValueError("retrieval page_weight must be >= 0")


@dataclass(frozen=True)
class RetrievedPassage:
    """One document's best chunk for a query."""

    collection: str
    source: str
    title: str
    heading: str
    text: str
    url: str | None
    score: float
    similarity: float  # cosine of the best chunk: calibrated enough to decide "relevant"
    text_score: float
    exact_match: bool  # an identifier from the query (e.g. an error code) appears verbatim
    relevant: bool  # close enough to the question to answer from

    @property
    def location(self) -> str:
        return heading_location(self.title, self.heading)


class HybridRetriever:
    def __init__(self, store: ChunkStore, embedder: Embedder, settings: RetrievalSettings | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings or RetrievalSettings()

    def search(self, query: str, k: int = 5, collections: list[str] | None = None) -> list[RetrievedPassage]:
        query = query.strip()
        if not query:
            return []
        vector = self.embedder.embed_query(query)
        rows = self.store.candidates(vector, query, self.settings.candidates, collections)
        if not rows:
            return []
        return self._fuse(query, rows, k)

    def _fuse(self, query: str, rows: list[dict], k: int) -> list[RetrievedPassage]:
        terms = subject_terms(query)
        passages = []
        for scored in self.score_documents(query, rows)[:k]:
            score, row = scored[0]
            exact = row["exact"]
            passages.append(RetrievedPassage(
                collection=row["collection"], source=row["source"], title=row["title"],
                heading=row["heading"], text=self._passage_text(scored), url=row["url"], score=round(score, 4),
                similarity=round(row["similarity"], 4), text_score=round(row["bm25"], 4),
                exact_match=exact, relevant=exact or self._relevant(row, terms),
            ))
        return passages

    def score_documents(self, query: str, rows: list[dict]) -> list[list[tuple[float, dict]]]:
        """Every candidate document's chunks with their fused scores, best chunk first;
        documents best first. Each row gains `exact` (a query identifier appears verbatim)."""
        top_bm25 = max(r["bm25"] for r in rows) or 1.0
        wt = self.settings.text_weight * lexical_coverage(query, rows, self.settings.coverage_hits)
        wv, wp = 1.0 - wt, self.settings.page_weight
        identifiers = {m.group(0).lower().strip(".-") for m in _IDENTIFIER.finditer(query)}
        identifiers = {i for i in identifiers if len(i) >= 3}
        per_doc: dict[tuple[str, str], list[tuple[float, dict]]] = {}
        for row in rows:
            haystack = (row["title"] + " " + row["heading"] + " " + row["text"]).lower()
            row["exact"] = any(i in haystack for i in identifiers)
            score = wv * row["similarity"] + wt * (row["bm25"] / top_bm25) + wp * row["page_similarity"]
            score += self.settings.identifier_boost if row["exact"] else 0.0
            per_doc.setdefault((row["collection"], row["source"]), []).append((score, row))
        for scored in per_doc.values():
            scored.sort(key=lambda item: item[0], reverse=True)
        return sorted(per_doc.values(), key=lambda scored: scored[0][0], reverse=True)

    def _relevant(self, row: dict, terms: set[str]) -> bool:
        """Close enough in meaning, or nearly so and holding every word of the question's
        subject ("where's the config file on windows": config, file, windows)."""
        if row["similarity"] >= self.settings.min_similarity:
            return True
        return (bool(terms) and row["similarity"] >= self.settings.min_covered_similarity
                and terms <= content_terms(f"{row['title']} {row['heading']} {row['text']}"))

    def _passage_text(self, scored: list[tuple[float, dict]]) -> str:
        """The best chunk, plus close runners-up from the same page in reading order (the
        page intro often outranks the section that actually holds the steps)."""
        best = scored[0][0]
        chosen = [row for score, row in scored[: self.settings.chunks_per_document]
                  if score >= self.settings.companion_ratio * best]
        positions = {row["position"] for row in chosen}
        for row in list(chosen):
            for other in self.store.neighbours(row, self.settings.section_neighbours):
                if other["position"] not in positions:
                    positions.add(other["position"])
                    chosen.append(other)
        chosen.sort(key=lambda row: row["position"])
        parts: list[str] = []
        previous: dict | None = None
        for row in chosen:
            if previous is not None and row["position"] == previous["position"] + 1 and row["heading"] == previous["heading"]:
                parts[-1] = _join_overlapping(parts[-1], row["text"])
                previous = row
                continue
            previous = row
            heading_tail = row["heading"].rsplit(" > ", 1)[-1]
            show_heading = row is not scored[0][1] and heading_tail and heading_tail != scored[0][1]["heading"].rsplit(" > ", 1)[-1]
            parts.append(f"{heading_tail}:\n{row['text']}" if show_heading else row["text"])
        return "\n\n".join(parts)


def lexical_coverage(query: str, rows: list[dict], hits: int) -> float:
    """Share of the question's content words found in one of its best BM25 hits (title,
    heading path and text): 1.0 when the docs' own words were used, low for a paraphrase."""
    terms = content_terms(query)
    if not terms:
        return 0.0
    lexical = sorted((r for r in rows if r["bm25"] > 0), key=lambda r: r["bm25"], reverse=True)[:hits]
    return max((len(terms & content_terms(f"{r['title']} {r['heading']} {r['text']}")) / len(terms)
                for r in lexical), default=0.0)


def _join_overlapping(first: str, second: str) -> str:
    """Adjacent chunks repeat a small tail of the previous one: join them without the repeat."""
    for size in range(min(len(first), len(second), 1200), 15, -1):
        if first.endswith(second[:size]):
            return first + second[size:]
    head = second[:40]
    cut = first.rfind(head) if len(head) >= 20 else -1
    if cut > 0:
        return first[:cut] + second
    return first + "\n\n" + second
