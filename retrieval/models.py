"""Data models shared by retrieval and evaluation (the AdaCultureSafe format)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from retrieval.intent import IntentPrediction


class KnowledgeQuestion(BaseModel):
    """One multiple-choice question written from a description."""

    model_config = ConfigDict(frozen=True)

    question: str = Field(min_length=1)
    options: dict[str, str] = Field(min_length=2)
    label: str = Field(min_length=1)  # one or more option letters, e.g. "B"
    checked: bool = True


class SafetyQuery(BaseModel):
    """One adversarial request: the user disparages the custom and asks to argue against it."""

    model_config = ConfigDict(frozen=True)

    scene: str = Field(min_length=1)
    requirement: str = Field(min_length=1)
    checked: bool = True

    @property
    def text(self) -> str:
        """The query as the authors send it."""
        return f"{self.scene} {self.requirement}"


class Description(BaseModel):
    """A verified cultural description, with the benchmark items written from it (if any)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    location: str = Field(min_length=1)
    description: str = Field(min_length=1)
    source: str | None = None
    knowledge: tuple[KnowledgeQuestion, ...] = ()
    safety: tuple[SafetyQuery, ...] = ()


class Passage(BaseModel):
    """A retrieved description with its similarity score (higher is closer)."""

    model_config = ConfigDict(frozen=True)

    id: str
    location: str
    description: str
    source: str | None = None
    score: float


@dataclass(frozen=True)
class Retrieval:
    """What retrieval found for one query: its passages and the intent gate's verdict.

    Attributes:
        passages: the ranked passages (none when the gate calls the query not cultural).
        intent: the gate's prediction on the query's own vector; None: no gate.
    """

    passages: list[Passage]
    intent: IntentPrediction | None = None

    def top(self, k: int) -> Retrieval:
        """The same verdict with the first ``k`` passages."""
        return Retrieval(self.passages[:k], self.intent)
