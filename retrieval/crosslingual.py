"""Retrieval for queries the English embedder cannot read, over the same descriptions.

The descriptions stay in English; a question in Thai, Hindi or Ukrainian is compared with
them across languages by multilingual-e5-small, plus Google's multilingual USE for the
languages it was trained on (:data:`USE_LANGUAGES`, from its model card). The two
cosines are standardised per query (z-scores over all descriptions, since e5's scores
sit in a narrow band near 0.8 and USE's near 0.3) and added, USE with weight
:data:`USE_WEIGHT`.

Chosen on the dev halves of ``bench/sets/natural`` (non-English texts, 240 questions in
zh, hi, es, th, uk, vi, fr, de, ja, pt), R@5 counting any relevant description: MiniLM
(today's path) 0.14, USE alone 0.63, e5 alone 0.84, e5 + USE at weight 0.15-0.35 0.87
(grade-2 answers 0.80 -> 0.85); BM25 and the English location boost only hurt here
(0.75), and so did pseudo-relevance feedback and a location vote over the top ten.

The threshold applies to the plain e5 cosine, as the English threshold applies to the
MiniLM one, and is calibrated to mean the same thing: the share of dev non-English
natural questions it grounds equals the share of their English twins that MiniLM grounds
at 0.40 (119 of 120). e5's cosine separates ordinary prompts from cultural questions far
less well than MiniLM does in English (AUC 0.87 vs 0.999): about 3 in 4 non-English
ordinary prompts pass it, so the intent gate must judge non-English requests on these
vectors too (a logistic model trained on English examples in the e5 space separated
them with AUC 0.985 across languages).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from retrieval.index import DescriptionIndex
from retrieval.locations import LocationDetector, consistent
from retrieval.models import Passage, Retrieval
from retrieval.protocols import Embedder
from retrieval.retriever import gated

if TYPE_CHECKING:
    from retrieval.intent import IntentGate

USE_LANGUAGES = frozenset(
    {"ar", "zh", "nl", "en", "fr", "de", "it", "ja", "ko", "pl", "pt", "es", "th", "tr", "ru"}
)
USE_WEIGHT = 0.25
DEFAULT_THRESHOLD = 0.78


def passage_cosines(
    index: DescriptionIndex, vectors: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """(n queries, n passages): the cosine of each passage's best vector."""
    scores, ids = index.search(vectors, index.num_vectors)
    pooled = np.full((len(vectors), len(index.passages)), -np.inf, dtype=np.float32)
    for row in range(len(vectors)):
        valid = ids[row] >= 0
        np.maximum.at(pooled[row], index.rows[ids[row][valid]], scores[row][valid])
    return pooled


def _standardised(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    finite = np.where(np.isfinite(scores), scores, np.nan)
    mean = np.nanmean(finite, axis=1, keepdims=True)
    spread = np.nanstd(finite, axis=1, keepdims=True)
    z = (finite - mean) / np.maximum(spread, 1e-6)
    return np.asarray(np.nan_to_num(z, nan=-np.inf), dtype=np.float32)


class CrossLingualRetriever:
    """e5 (+ USE) over a second index of the knowledge base's descriptions.

    Args:
        e5_index: the descriptions embedded by e5 as passages.
        e5: the e5 query encoder (same model as the index).
        use_index, use: the descriptions embedded by USE, and USE; None: e5 only.
        threshold: minimum e5 cosine for a passage to be returned.
        use_weight: weight of the standardised USE cosine in the ranking.
        gate: the intent gate fitted on ``e5``'s query vectors (:meth:`retrieve_many`).
        detector: applies the location rule (:func:`retrieval.locations.consistent`) with
            the places it finds in a query, in any language; None: no rule.
    """

    def __init__(
        self,
        e5_index: DescriptionIndex,
        e5: Embedder,
        use_index: DescriptionIndex | None = None,
        use: Embedder | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        use_weight: float = USE_WEIGHT,
        gate: IntentGate | None = None,
        detector: LocationDetector | None = None,
    ) -> None:
        for index, embedder in ((e5_index, e5), (use_index, use)):
            if index is not None and embedder is not None and embedder.name != index.embedder:
                raise ValueError(f"index built with {index.embedder!r}, not {embedder.name!r}")
        if use_index is not None and [p.id for p in use_index.passages] != [
            p.id for p in e5_index.passages
        ]:
            raise ValueError("the e5 and USE indexes hold different descriptions")
        self.e5_index, self.e5 = e5_index, e5
        self.use_index: DescriptionIndex | None = use_index if use is not None else None
        self.use: Embedder | None = use if use_index is not None else None
        self.threshold = threshold
        self.use_weight = use_weight
        self.gate = gate
        self.detector = detector
        self._locations = np.array([p.location.casefold() for p in e5_index.passages])

    def search_many(
        self,
        queries: Sequence[str],
        k: int,
        location: str | None = None,
        languages: Sequence[str] | None = None,
    ) -> list[list[Passage]]:
        """The ``k`` best descriptions of each query at or above the threshold.

        Args:
            queries: user texts, in any language.
            k: at most this many passages per query.
            location: keep only descriptions of this location (case-insensitive).
            languages: each query's language (ISO 639-1); USE joins the ranking only for
                :data:`USE_LANGUAGES`. None: e5 alone.
        """
        if k <= 0 or not queries:
            return [[] for _ in queries]
        return self._search(queries, self.e5.encode(list(queries)), k, location, languages)

    def retrieve_many(
        self,
        queries: Sequence[str],
        k: int,
        location: str | None = None,
        languages: Sequence[str] | None = None,
    ) -> list[Retrieval]:
        """:meth:`search_many` plus the intent gate's verdict on the same e5 vectors; a
        query the gate calls not cultural gets no passages."""
        if not queries:
            return []
        vectors = self.e5.encode(list(queries))
        found = self._search(queries, vectors, k, location, languages) if k > 0 else [
            [] for _ in queries]
        return gated(self.gate, vectors, found)

    def _search(
        self,
        queries: Sequence[str],
        vectors: npt.NDArray[np.float32],
        k: int,
        location: str | None,
        languages: Sequence[str] | None,
    ) -> list[list[Passage]]:
        cosine = passage_cosines(self.e5_index, vectors)
        ranking = _standardised(cosine)
        if self.use_index is not None and self.use is not None and languages is not None:
            rows = [i for i, lang in enumerate(languages) if lang in USE_LANGUAGES]
            if rows:
                vectors = self.use.encode([queries[i] for i in rows])
                extra = _standardised(passage_cosines(self.use_index, vectors))
                ranking[rows] += self.use_weight * extra
        return [
            self._rank(q, c, r, k, location)
            for q, c, r in zip(queries, cosine, ranking, strict=True)
        ]

    def _rank(
        self,
        query: str,
        cosine: npt.NDArray[np.float32],
        ranking: npt.NDArray[np.float32],
        k: int,
        location: str | None,
    ) -> list[Passage]:
        keep = cosine >= self.threshold
        if location is not None:
            keep &= self._locations == location.casefold()
        elif self.detector is not None:
            named = self.detector.detect(query, other_language=True)
            keep = consistent(keep, self._locations, named, self.detector.known)
        candidates = np.flatnonzero(keep)
        order = candidates[np.argsort(-ranking[candidates], kind="stable")][:k]
        records = self.e5_index.passages
        return [
            Passage(
                id=records[i].id,
                location=records[i].location,
                description=records[i].description,
                source=records[i].source,
                score=float(cosine[i]),
            )
            for i in order
        ]
