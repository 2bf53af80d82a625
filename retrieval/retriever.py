"""Hybrid retrieval over the description index: dense cosine, BM25 and a location boost.

A query is embedded once, compared with every vector of the index (FAISS, inner product
on normalised vectors = cosine) and pooled to one score per description. The shipped
method then adds two cheap signals (no second embedding, so latency stays that of one
encode): BM25 over the same texts (:mod:`retrieval.lexical`) and a boost for descriptions
of the location the query names (:mod:`retrieval.locations`). The similarity threshold
applies to the plain cosine so it keeps one meaning whatever the method: below it a text
is about no description (ordinary traffic such as a coding question) and nothing returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from retrieval.index import (
    LAYOUT_LOCATED,
    LAYOUT_PLAIN,
    DescriptionIndex,
    IndexManifest,
    text_to_index,
)
from retrieval.knowledge_base import KnowledgeBase
from retrieval.lexical import LexicalScorer
from retrieval.locations import LocationDetector, consistent
from retrieval.models import Passage, Retrieval
from retrieval.protocols import Embedder

if TYPE_CHECKING:
    from retrieval.intent import IntentGate

# Above this many vectors, score only the nearest candidates instead of the whole index.
EXHAUSTIVE_LIMIT = 50_000
CANDIDATES = 2_000


@dataclass(frozen=True)
class RetrievalMethod:
    """How a query is turned into a ranking (all knobs general, none per item).

    Attributes:
        name: reported in benchmarks.
        layout: the index layout it needs (:data:`retrieval.index.LAYOUTS`).
        lexical_weight: weight of the max-scaled BM25 score added to the cosine; 0: off.
        location_boost: added to the ranking score of descriptions whose location the
            query names; 0: off.
        location_consistent: when the query names places, only descriptions of the
            index's locations among them are returned (a question about Japan gets no Thai
            custom); a query that names places the index does not hold gets nothing.
        location_fallback: with ``location_consistent``, a query whose named index
            locations have no description past the threshold gets other locations' ones.
    """

    name: str
    layout: str
    lexical_weight: float = 0.0
    location_boost: float = 0.0
    location_consistent: bool = False
    location_fallback: bool = True


PLAIN_DENSE = RetrievalMethod(name="dense", layout=LAYOUT_PLAIN)
# Weights chosen on China/India/Spain and confirmed on Thailand/Ukraine (BENCHMARKS.md).
HYBRID = RetrievalMethod(
    name="hybrid", layout=LAYOUT_LOCATED, lexical_weight=0.1, location_boost=0.1,
    location_consistent=True,
)
DEFAULT_METHOD = HYBRID


class HybridRetriever:
    """The :class:`~retrieval.protocols.Retriever`: thread-safe, read-only after init.

    Args:
        index: the description index (its passages carry id, location, text, source).
        embedder: the same embedder the index was built with.
        threshold: minimum cosine similarity for a passage to be returned.
        method: the query-side method; :data:`PLAIN_DENSE` for the baseline.
        knowledge_base, manifest: what the index was built from, when known (set by
            :func:`retrieval.build.build_retriever`), for the service and ``index info``.
        gate: the intent gate fitted on ``embedder``'s vectors (:meth:`retrieve_many`).
    """

    def __init__(
        self,
        index: DescriptionIndex,
        embedder: Embedder,
        *,
        threshold: float,
        method: RetrievalMethod = DEFAULT_METHOD,
        knowledge_base: KnowledgeBase | None = None,
        manifest: IndexManifest | None = None,
        gate: IntentGate | None = None,
    ) -> None:
        if embedder.name != index.embedder or embedder.dimension != index.dimension:
            raise ValueError(
                f"index was built with {index.embedder!r} ({index.dimension}d), "
                f"not with {embedder.name!r} ({embedder.dimension}d)"
            )
        if method.layout != index.layout:
            raise ValueError(f"method {method.name!r} needs layout {method.layout!r}")
        self.index = index
        self.embedder = embedder
        self.threshold = threshold
        self.method = method
        self.knowledge_base = knowledge_base
        self.manifest = manifest
        self.gate = gate
        self._locations = np.array([p.location.casefold() for p in index.passages])
        self._detector = LocationDetector(
            {p.location for p in index.passages},
            ((p.location, p.description) for p in index.passages),
        )
        self._lexical = (
            LexicalScorer(
                [text_to_index(p.location, p.description, index.layout) for p in index.passages]
            )
            if method.lexical_weight
            else None
        )

    @property
    def detector(self) -> LocationDetector:
        """The places-in-a-query detector of this index (its locations and the world's)."""
        return self._detector

    @property
    def locations(self) -> list[str]:
        """The distinct locations of the indexed descriptions, sorted."""
        return sorted({p.location for p in self.index.passages})

    def search(self, query: str, k: int, location: str | None = None) -> list[Passage]:
        """The ``k`` best descriptions for ``query`` at or above the threshold.

        Passages come in the method's ranking order; each ``score`` is the plain cosine
        similarity (what the threshold compares), so scores need not be sorted.

        Args:
            query: the user's text.
            k: at most this many passages.
            location: keep only descriptions of this location (case-insensitive).
        """
        return self.search_many([query], k, location=location)[0]

    def search_many(
        self, queries: Sequence[str], k: int, location: str | None = None
    ) -> list[list[Passage]]:
        """:meth:`search` for several queries with a single embedding call."""
        if k <= 0 or not queries:
            return [[] for _ in queries]
        texts = [self._query_text(query, location) for query in queries]
        return self.search_embedded(queries, self.embedder.encode(texts), k, location)

    def retrieve_many(
        self, queries: Sequence[str], k: int, location: str | None = None
    ) -> list[Retrieval]:
        """:meth:`search_many` plus the intent gate's verdict on the same query vectors
        (no second encode); a query the gate calls not cultural gets no passages."""
        if not queries:
            return []
        texts = [self._query_text(query, location) for query in queries]
        vectors = self.embedder.encode(texts)
        return gated(self.gate, vectors, self.search_embedded(queries, vectors, k, location))

    def _query_text(self, query: str, location: str | None) -> str:
        """What is embedded for ``query``: under the located layout, a location the caller
        gives and the query does not name is put in front, as in the indexed texts
        (``"China: Which numbers are unlucky?"``), so the query is compared with the
        descriptions on the same footing."""
        if location is None or self.index.layout != LAYOUT_LOCATED:
            return query
        if location.casefold() in (named.casefold() for named in self._detector.detect(query)):
            return query
        return text_to_index(location, query, LAYOUT_LOCATED)

    def search_embedded(
        self,
        queries: Sequence[str],
        vectors: npt.NDArray[np.float32],
        k: int,
        location: str | None = None,
    ) -> list[list[Passage]]:
        """:meth:`search_many` with the query vectors already computed by ``self.embedder``.

        For callers that batch or cache embeddings themselves (micro-batching, benchmarks).
        """
        if k <= 0 or not queries:
            return [[] for _ in queries]
        cosine = self._pooled_scores(vectors)
        return [
            self._rank(query, row, k, location) for query, row in zip(queries, cosine, strict=True)
        ]

    def _pooled_scores(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(n queries, n passages) cosine of each passage's best vector (-inf if unseen)."""
        n = self.index.num_vectors if self.index.num_vectors <= EXHAUSTIVE_LIMIT else CANDIDATES
        scores, ids = self.index.search(vectors, n)
        pooled = np.full((len(vectors), len(self.index.passages)), -np.inf, dtype=np.float32)
        for qi in range(len(vectors)):
            valid = ids[qi] >= 0
            np.maximum.at(pooled[qi], self.index.rows[ids[qi][valid]], scores[qi][valid])
        return pooled

    def _rank(
        self, query: str, cosine: npt.NDArray[np.float32], k: int, location: str | None
    ) -> list[Passage]:
        ranking = cosine.copy()
        if self._lexical is not None:
            ranking += self.method.lexical_weight * self._lexical.scores(query)
        named = (
            self._detector.detect(query)
            if self.method.location_boost or self.method.location_consistent
            else []
        )
        known = [n.casefold() for n in named if n in self._detector.known]
        if known and self.method.location_boost:
            ranking[self._locations == known[0]] += self.method.location_boost
        keep = cosine >= self.threshold
        if location is not None:
            keep &= self._locations == location.casefold()
        elif self.method.location_consistent:
            keep = consistent(keep, self._locations, named, self._detector.known,
                              self.method.location_fallback)
        candidates = np.flatnonzero(keep)
        if candidates.size == 0:
            return []
        order = candidates[np.argsort(-ranking[candidates], kind="stable")][:k]
        return [self._passage(int(i), float(cosine[i])) for i in order]

    def _passage(self, position: int, score: float) -> Passage:
        record = self.index.passages[position]
        return Passage(
            id=record.id,
            location=record.location,
            description=record.description,
            source=record.source,
            score=score,
        )


def gated(
    gate: IntentGate | None,
    vectors: npt.NDArray[np.float32],
    found: list[list[Passage]],
) -> list[Retrieval]:
    """Each query's passages with ``gate``'s verdict on its vector (none if not cultural)."""
    if gate is None:
        return [Retrieval(passages) for passages in found]
    return [
        Retrieval(passages if verdict.cultural else [], verdict)
        for passages, verdict in zip(found, gate.predict(vectors), strict=True)
    ]
