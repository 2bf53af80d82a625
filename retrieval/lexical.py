"""BM25 over the indexed texts: the exact-word signal a small embedder blurs.

A question about "pointing at items with your foot while bargaining" shares rare words
with exactly one description; dense similarity ranks several etiquette descriptions
about feet alike. The BM25 scores, scaled by the query's best score, are added to the
cosine with a small weight (see :class:`retrieval.retriever.RetrievalMethod`). The index
is rebuilt from the passages at start-up (a second for thousands of descriptions), so
nothing but the FAISS index and JSON needs to be stored.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


class LexicalScorer:
    """BM25 (``bm25s``) scores of every passage for a query, scaled to [0, 1]."""

    def __init__(self, texts: Sequence[str]) -> None:
        import bm25s

        self._bm25s = bm25s
        self._size = len(texts)
        self._model = bm25s.BM25()
        tokens = bm25s.tokenize(list(texts), stopwords="en", show_progress=False)
        self._model.index(tokens, show_progress=False)
        # bm25s keeps no per-query state, but its tokenizer helpers are not documented as
        # thread-safe; a lock costs ~1 ms per query at most.
        self._lock = threading.Lock()

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 of each passage divided by the best one (all zeros if no word matches)."""
        with self._lock:
            words = self._bm25s.tokenize(
                [query], stopwords="en", show_progress=False, return_ids=False
            )[0]
            if not words:  # only stopwords or no word at all ("a", "", CJK): bm25s raises
                return np.zeros(self._size, dtype=np.float32)
            raw = np.asarray(self._model.get_scores(words), dtype=np.float32)
        best = float(raw.max()) if raw.size else 0.0
        return raw / best if best > 0 else np.zeros(self._size, dtype=np.float32)
