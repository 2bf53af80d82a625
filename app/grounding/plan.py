"""``GroundingPlan``: what grounding decided for one request, and the details it reports.

A module of its own so that the techniques (which re-plan on a fallback) and the response
code depend on the plan, not on the service that makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.config import GroundingMode, GroundingTechnique, Intent
from app.grounding.techniques.prompting import TechniquePlan
from app.protocol import Citation, CultureSafeDetails
from retrieval.models import Passage


@dataclass(frozen=True)
class GroundingPlan:
    """What grounding decided for one request."""

    requested_mode: GroundingMode
    mode: GroundingMode
    applied: bool
    passages: tuple[Passage, ...]
    messages: list[dict[str, Any]]
    strip_knowledge: bool
    overhead_ms: float
    technique: TechniquePlan | None = None  # grounded only: prefill, two-pass... (None: instruct)
    requested_technique: GroundingTechnique | None = None
    technique_fallback: str | None = None
    warning: str | None = None  # served ungrounded because retrieval failed (fail-open)
    intent: Intent | None = None  # the gate's class or the client's; None: not known
    intent_score: float | None = None  # the gate's probability of ``intent``
    # Sampling fields added to the upstream body (a repeat penalty against loops); the
    # response code drops them when the client set a penalty of its own.
    sampling: dict[str, int | float] = field(default_factory=dict)

    def details(
        self, knowledge: str | None = None, overhead_ms: float | None = None
    ) -> CultureSafeDetails:
        cited = self.passages if self.mode in ("inject", "grounded") else ()
        return CultureSafeDetails(
            applied=self.applied,
            mode=self.mode,
            requested_mode=self.requested_mode,
            citations=[
                Citation(
                    index=i,
                    id=p.id,
                    location=p.location,
                    description=p.description,
                    score=round(p.score, 4),
                )
                for i, p in enumerate(cited, start=1)
            ],
            knowledge=knowledge,
            overhead_ms=round(self.overhead_ms if overhead_ms is None else overhead_ms, 2),
            intent=self.intent,
            intent_score=None if self.intent_score is None else round(self.intent_score, 4),
            sampling=self.sampling or None,
            **self._technique_details(),
        )

    def _technique_details(self) -> dict[str, Any]:
        if self.mode != "grounded" or not self.applied:
            return {}
        used = self.technique
        return {"technique": used.technique if used else "instruct",
                "requested_technique": self.requested_technique,
                "technique_fallback": self.technique_fallback,
                "prefill": used.opening if used else None}
