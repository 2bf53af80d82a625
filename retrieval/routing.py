"""The retriever the gateway uses: English text on the English path, other text across.

Each query is routed by its language (:func:`retrieval.language.query_language`): English
goes to the :class:`~retrieval.retriever.HybridRetriever` exactly as before (same
embedder, index, threshold and ranking, so AdaCultureSafe recall and the English cost are
unchanged but for the language check, about 0.5 ms); any other language goes to the
:class:`~retrieval.crosslingual.CrossLingualRetriever` over the same descriptions. A
conversation's queries are routed one by one, so a Thai follow-up to an English turn
takes the cross-lingual path for the Thai text only.

Scores keep each path's own cosine (MiniLM for English, e5 otherwise); each path's
threshold was calibrated to ground the same share of natural questions
(:mod:`retrieval.crosslingual`). Each path has its own intent gate, fitted on its own
vectors (:meth:`RoutedRetriever.retrieve_many`): the MiniLM gate means nothing on text
MiniLM cannot read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from retrieval.crosslingual import CrossLingualRetriever
from retrieval.language import ENGLISH, query_language
from retrieval.models import Passage, Retrieval
from retrieval.retriever import HybridRetriever

T = TypeVar("T")


class RoutedRetriever:
    """A :class:`~retrieval.protocols.Retriever` that routes each query by language.

    Attributes that describe the knowledge base and the English index (``index``,
    ``embedder``, ``threshold``, ``method``, ``knowledge_base``, ``manifest``) are the
    English retriever's, so callers that report on the index keep working.
    """

    def __init__(self, english: HybridRetriever, other: CrossLingualRetriever) -> None:
        if [p.id for p in english.index.passages] != [p.id for p in other.e5_index.passages]:
            raise ValueError("the English and cross-lingual indexes hold different descriptions")
        self.english = english
        self.other = other
        self.index = english.index
        self.embedder = english.embedder
        self.threshold = english.threshold
        self.method = english.method
        self.knowledge_base = english.knowledge_base
        self.manifest = english.manifest

    @property
    def locations(self) -> list[str]:
        """The distinct locations of the indexed descriptions, sorted."""
        return self.english.locations

    def search(self, query: str, k: int, location: str | None = None) -> list[Passage]:
        """The ``k`` best descriptions for ``query`` on its language's path."""
        return self.search_many([query], k, location)[0]

    def search_many(
        self, queries: Sequence[str], k: int, location: str | None = None
    ) -> list[list[Passage]]:
        """:meth:`search` for several queries: one encode per path that has queries."""
        return self._routed(queries, self.english.search_many, self.other.search_many, k,
                            location, [])

    def retrieve_many(
        self, queries: Sequence[str], k: int, location: str | None = None
    ) -> list[Retrieval]:
        """:meth:`search_many` plus each path's intent gate on that path's query vectors."""
        return self._routed(queries, self.english.retrieve_many, self.other.retrieve_many, k,
                            location, Retrieval([]))

    def _routed(
        self,
        queries: Sequence[str],
        english: Callable[[Sequence[str], int, str | None], list[T]],
        other: Callable[[Sequence[str], int, str | None, Sequence[str]], list[T]],
        k: int,
        location: str | None,
        empty: T,
    ) -> list[T]:
        languages = [query_language(query) for query in queries]
        results: list[T] = [empty for _ in queries]
        mine = [i for i, lang in enumerate(languages) if lang == ENGLISH]
        rest = [i for i, lang in enumerate(languages) if lang != ENGLISH]
        if mine:
            for i, found in zip(mine, english([queries[i] for i in mine], k, location),
                                strict=True):
                results[i] = found
        if rest:
            found_rest = other([queries[i] for i in rest], k, location,
                               [languages[i] for i in rest])
            for i, found in zip(rest, found_rest, strict=True):
                results[i] = found
        return results
