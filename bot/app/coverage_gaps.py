"""Grouping questions by meaning with the bundled embedder: the `GroupByMeaning` insights use.

Each distinct question is embedded once and its vector kept in the feedback store (as
float16: half the space, and cosine similarities move by less than 0.001), mostly at answer
time from the retrieval's own query vector, so a report over a hundred thousand questions
embeds only those it has not seen and usually loads no model at all.

Questions to one bot share a frame ("Does Driftwood support ...?", "How do I ...?") that
sentence embeddings weigh heavily: left in, "Does Driftwood support Zapier?" and "Does
Driftwood support LDAP?" look alike. So the vectors are first centred on what the questions
have in common (their mean, shrunk towards zero when there are few of them), then grouped
in two passes of leader clustering: each question, most asked first, joins the closest
group whose centroid is at least `SAME_TOPIC` cosine-similar, else starts one; then the
groups' centroids are grouped the same way, which joins the pieces of a topic the order of
the first pass split. It costs O(questions x groups) and needs no number of groups chosen
per corpus. A group is named by its member closest to the group's centroid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from bot.feedback import FeedbackStore

if TYPE_CHECKING:
    from knowledge.embedding import Embedder

log = logging.getLogger(__name__)

# Chosen on bench_insights' synthetic gaps (40 topics in 6 frames) and checked there on
# held-out paraphrases (9 topics): with all-MiniLM-L6-v2 the centred vectors of paraphrases
# sit above it and different topics below it.
SAME_TOPIC = 0.45
SHRINK_BELOW = 30  # questions: the mean of fewer is a weak estimate of the shared frame
VECTOR_DTYPE = np.float16


class MeaningGroups:
    def __init__(self, store: FeedbackStore, embedder: Callable[[], Embedder], same_topic: float = SAME_TOPIC) -> None:
        self.store = store
        self._embedder = embedder  # loaded only when there are gaps to group
        self.same_topic = same_topic

    def __call__(self, texts: list[str], keys: list[str]) -> list[list[int]]:
        """`texts` most asked first; groups of their indices, the most central first."""
        if not texts:
            return []
        return group_by_meaning(self.vectors(texts, keys), self.same_topic)

    def vectors(self, texts: list[str], keys: list[str]) -> np.ndarray:
        embedder = self._embedder()
        model = stored_as(embedder.model_id)
        stored = self.store.vectors(keys, model)
        missing = [i for i, key in enumerate(keys) if key not in stored]
        if missing:
            fresh = embedder.embed_documents([texts[i] for i in missing])
            made = {keys[i]: _stored(fresh[n]) for n, i in enumerate(missing)}
            self.store.save_vectors(made, model)
            stored.update(made)
            log.info("embedded %d new question(s) for coverage gaps", len(missing))
        return np.stack([np.frombuffer(stored[key], dtype=VECTOR_DTYPE) for key in keys]).astype(np.float32)

    def remember(self, key: str, vector: np.ndarray, model_id: str) -> None:
        """Keep a question's vector computed elsewhere (the retrieval's, at answer time)."""
        self.store.save_vectors({key: _stored(vector)}, stored_as(model_id))


def stored_as(model_id: str) -> str:
    """The name vectors are stored under: the model and the number format, so neither a
    change of model nor of format ever mixes vectors."""
    return f"{model_id}/{np.dtype(VECTOR_DTYPE).name}"


def _stored(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def group_by_meaning(vectors: np.ndarray, same_topic: float = SAME_TOPIC) -> list[list[int]]:
    """Rows most asked first (unit vectors); index groups, each with its most central first."""
    centred = _unit(vectors - vectors.mean(axis=0) * (len(vectors) / (len(vectors) + SHRINK_BELOW)))
    pieces = sorted(leader_groups(centred, same_topic), key=len, reverse=True)  # stable: most asked first
    centroids = _unit(np.stack([centred[rows].sum(axis=0) for rows in pieces]))
    groups = [[row for piece in joined for row in pieces[piece]] for joined in leader_groups(centroids, same_topic)]
    named = []
    for rows in groups:
        centroid = _unit(centred[rows].sum(axis=0, keepdims=True))[0]
        central = rows[int(np.argmax(centred[rows] @ centroid))]
        named.append([central, *[r for r in rows if r != central]])
    return named


def leader_groups(vectors: np.ndarray, same_topic: float) -> list[list[int]]:
    """One pass: rows in order (unit vectors) each join the most similar group centroid at
    or above `same_topic`, else start a group. Returns the groups' row indices in order."""
    n, dims = vectors.shape
    sums = np.zeros((n, dims), dtype=np.float32)  # at most one group per row
    centroids = np.zeros((n, dims), dtype=np.float32)
    members: list[list[int]] = []
    for i in range(n):
        v = vectors[i]
        k = len(members)
        if k:
            sims = centroids[:k] @ v
            best = int(np.argmax(sims))
            if sims[best] >= same_topic:
                members[best].append(i)
                sums[best] += v
                centroids[best] = sums[best] / (np.linalg.norm(sums[best]) or 1.0)
                continue
        members.append([i])
        sums[k] = v
        centroids[k] = v
    return members


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1.0, norms)).astype(np.float32)
