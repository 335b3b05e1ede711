"""Grouping questions by meaning with the bundled embedder: the `GroupByMeaning` insights use.

Each distinct question is embedded once and its vector kept in the feedback store (as
float16: half the space, and cosine similarities move by less than 0.001), mostly at answer
time from the retrieval's own query vector, so a report over a hundred thousand questions
embeds only those it has not seen and usually loads no model at all. Groups come
from one pass of leader clustering (most-asked question first: it joins the closest group
whose centroid is at least `SAME_TOPIC` cosine-similar, else starts one), which costs
O(questions x groups) and needs no number of groups chosen per corpus. A group is named by
its member closest to the group's centroid.
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

# With all-MiniLM-L6-v2, paraphrases of one question sit at 0.5-0.9 cosine, and questions on
# different topics of one product (SSO with Okta vs with Azure AD, Terraform vs on-premise)
# at 0.4 and below: the bar sits between, not fitted to any one corpus.
SAME_TOPIC = 0.45
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
        return leader_groups(self.vectors(texts, keys), self.same_topic)

    def vectors(self, texts: list[str], keys: list[str]) -> np.ndarray:
        embedder = self._embedder()
        model = embedder.model_id
        stored = self.store.vectors(keys, model)
        missing = [i for i, key in enumerate(keys) if key not in stored]
        if missing:
            fresh = embedder.embed_documents([texts[i] for i in missing])
            made = {keys[i]: _stored(fresh[n]) for n, i in enumerate(missing)}
            self.store.save_vectors(made, model)
            stored.update(made)
            log.info("embedded %d new question(s) for coverage gaps", len(missing))
        return np.stack([np.frombuffer(stored[key], dtype=VECTOR_DTYPE) for key in keys]).astype(np.float32)

    def remember(self, key: str, vector: np.ndarray, model: str) -> None:
        """Keep a question's vector computed elsewhere (the retrieval's, at answer time)."""
        self.store.save_vectors({key: _stored(vector)}, model)


def _stored(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def leader_groups(vectors: np.ndarray, same_topic: float) -> list[list[int]]:
    """Rows in order (unit vectors); each joins the most similar group centroid at or above
    `same_topic`, else starts a group. Returns index groups, most central member first."""
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
    groups = []
    for k, rows in enumerate(members):
        central = rows[int(np.argmax(vectors[rows] @ centroids[k]))]
        groups.append([central, *[r for r in rows if r != central]])
    return groups
