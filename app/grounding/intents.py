"""One verdict and one list of passages for a request searched as several queries.

A request may be searched as more than one query (:mod:`app.grounding.queries`), each
with the intent gate's verdict on its own vector, and each served by the path of its
language, whose scores are on that path's scale (MiniLM or e5 cosines): so passages are
merged by rank (the first of each query, then the second...), never by comparing scores
across queries.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.config import Intent
from retrieval.intent_data import NOT_CULTURAL
from retrieval.models import Passage, Retrieval


def merged(found: Sequence[Retrieval], k: int) -> tuple[Passage, ...]:
    """The first ``k`` distinct passages, taking each query's in turn, rank by rank."""
    seen: dict[str, Passage] = {}
    depth = max((len(r.passages) for r in found), default=0)
    for rank in range(depth):
        for retrieval in found:
            if rank < len(retrieval.passages):
                seen.setdefault(retrieval.passages[rank].id, retrieval.passages[rank])
    return tuple(list(seen.values())[:k])


def request_intent(found: Sequence[Retrieval]) -> tuple[Intent, float] | None:
    """The request's intent and the gate's probability of it, from its queries' verdicts.

    Cultural if any query is; then the class of the most confident cultural verdict. Not
    cultural: the least confident of those verdicts (the closest call). None: no gate.
    """
    verdicts = [r.intent for r in found if r.intent is not None]
    if not verdicts:
        return None
    cultural = [v for v in verdicts if v.cultural]
    if cultural:
        best = max(cultural, key=lambda v: v.probabilities[v.intent])
    else:
        best = min(verdicts, key=lambda v: v.probabilities[NOT_CULTURAL])
    intent: Intent = best.intent  # type: ignore[assignment]
    return intent, best.probabilities[best.intent]
