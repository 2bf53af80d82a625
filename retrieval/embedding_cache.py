"""A bounded LRU cache of query embeddings, and the embedder's CPU thread count.

Embedding the query is nearly all of grounding's cost on the request path (profiled in
BENCHMARKS.md, "Gateway overhead"). Clients repeat themselves (retries, regenerations,
the same question from many users, an evaluation re-run), and the same text always
embeds to the same vector, so a repeat need not run the model again. The cache is keyed
by the exact text, bounded (least recently used first out) and thread-safe, since
grounding calls the retriever from worker threads. The vectors it returns are read-only
copies, so no caller can change what another will get.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from retrieval.protocols import Embedder


class CachedEmbedder:
    """An :class:`~retrieval.protocols.Embedder` that remembers the last ``maxsize`` texts.

    Misses of one call are embedded together in a single call of the wrapped embedder.
    """

    def __init__(self, inner: Embedder, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.inner = inner
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._vectors: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def __len__(self) -> int:
        return len(self._vectors)

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Rows for ``texts``, identical to the wrapped embedder's, from memory when seen."""
        rows: list[npt.NDArray[np.float32] | None] = []
        with self._lock:
            for text in texts:
                row = self._vectors.get(text)
                if row is not None:
                    self._vectors.move_to_end(text)
                rows.append(row)
        missing = list(dict.fromkeys(t for t, r in zip(texts, rows, strict=True) if r is None))
        fresh: dict[str, npt.NDArray[np.float32]] = {}
        if missing:
            for text, row in zip(missing, self.inner.encode(missing), strict=True):
                kept = np.array(row, dtype=np.float32)
                kept.setflags(write=False)
                fresh[text] = kept
            with self._lock:
                for text, kept in fresh.items():
                    self._vectors[text] = kept
                    self._vectors.move_to_end(text)
                while len(self._vectors) > self.maxsize:
                    self._vectors.popitem(last=False)
        with self._lock:
            self.hits += len(texts) - sum(r is None for r in rows)
            self.misses += len(missing)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        pairs = zip(texts, rows, strict=True)
        return np.stack([r if r is not None else fresh[t] for t, r in pairs])


def set_torch_threads(threads: int) -> int:
    """Set torch's intra-op CPU threads for this process (all threads); return the old value.

    On a shared 2-core machine one thread embedded a query about 4x faster than two
    (BENCHMARKS.md): encodes are serialised by the embedder's lock anyway, and two
    threads fight the web server and other processes for the same cores.
    """
    import torch

    previous = int(torch.get_num_threads())
    torch.set_num_threads(threads)
    return previous
