"""The knowledge-grounded method, step one: retrieve, then rewrite the prompt.

``GroundingService.plan`` takes the client's messages and options and returns a
``GroundingPlan``: the messages to send upstream, the passages given to the model, and
whether the answer will carry a ``<culture_knowledge>`` block to strip. Modes:

* ``off``: the messages go upstream untouched; no retrieval.
* ``elicit``: the model is asked to write the relevant knowledge itself, then answer.
* ``inject``: the retrieved, verified descriptions precede the conversation.
* ``grounded``: inject, and the model first restates the custom and why it matters,
  citing ``[n]``, then answers respectfully; the block is removed from the answer.

Retrieval runs on the latest user turn, and on that turn with the previous user turn as
context (to resolve "what about there?"); the better score of a passage wins. Both are
embedded in one call, batched with concurrent requests' (``app/query_batcher.py``).
When nothing passes the similarity threshold, the request goes upstream unchanged
(``applied: false``).
The client's system message is kept verbatim: grounding adds to it, never replaces it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio

from app.config import GroundingMode, GroundingTechnique, Settings
from app.errors import RetrievalFailed
from app.knowledge_block import neutralize
from app.metrics import Metrics
from app.protocol import Citation, CultureSafeDetails, GroundingOptions
from app.query_batcher import QueryBatcher
from app.techniques.prompting import TechniquePlan, build_technique
from prompts import load_prompt
from retrieval.models import Passage
from retrieval.protocols import Retriever

_log = logging.getLogger(__name__)
_CONTEXT_CHARS = 400  # earlier-turn text added to the retrieval query
_WRITES_BLOCK: frozenset[GroundingMode] = frozenset({"elicit", "grounded"})


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


def text_of(content: Any) -> str:
    """The text of a message's content (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def retrieval_queries(messages: list[dict[str, Any]]) -> list[str]:
    """The latest user turn alone, and with the previous user turn as context."""
    users = [text_of(m.get("content")).strip() for m in messages if m.get("role") == "user"]
    users = [u for u in users if u]
    if not users:
        return []
    queries = [users[-1]]
    if len(users) > 1:
        queries.append(f"{users[-2][-_CONTEXT_CHARS:]}\n{users[-1]}")
    return queries


def _neutralized(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if message.get("role") in ("system", "developer"):
        return message  # the application's own instructions are trusted and kept verbatim
    if isinstance(content, str):
        return {**message, "content": neutralize(content)}
    if isinstance(content, list):
        parts = [
            {**p, "text": neutralize(p["text"])}
            if isinstance(p, dict) and isinstance(p.get("text"), str)
            else p
            for p in content
        ]
        return {**message, "content": parts}
    return message


def grounded_messages(
    messages: list[dict[str, Any]],
    mode: GroundingMode,
    passages: tuple[Passage, ...],
    template_name: str | None = None,
) -> list[dict[str, Any]]:
    """The conversation with our system prompt added (merged into the client's, if any)."""
    entry = load_prompt("knowledge_entry")
    knowledge = "\n".join(
        entry.render(
            index=str(i), location=neutralize(p.location), description=neutralize(p.description)
        )
        for i, p in enumerate(passages, start=1)
    )
    template = load_prompt(template_name or mode)
    grounding = (
        template.render(knowledge=knowledge)
        if "knowledge" in template.placeholders
        else template.render()
    )
    rest = [_neutralized(m) for m in messages]
    first = rest[0] if rest else {}
    if first.get("role") == "system" and isinstance(first.get("content"), str):
        merged = load_prompt("client_system").render(grounding=grounding, client=first["content"])
        return [{**first, "content": merged}, *rest[1:]]
    return [{"role": "system", "content": grounding}, *rest]


class GroundingService:
    """Retrieval plus prompt construction, shared by every chat route."""

    def __init__(self, retriever: Retriever, settings: Settings, metrics: Metrics) -> None:
        self._retriever = retriever
        self._settings = settings
        self._metrics = metrics
        search_many = getattr(retriever, "search_many", None)
        self._batcher = (
            QueryBatcher(search_many, settings.query_batch_size,
                         workers=settings.query_batch_workers)
            if callable(search_many) and settings.query_batch_size > 1
            else None
        )

    def _search_all(
        self, queries: list[str], k: int, location: str | None
    ) -> list[list[Passage]]:
        """Every query in one worker-thread hop (retrievers without ``search_many``)."""
        return [self._retriever.search(query, k, location) for query in queries]

    async def _search(
        self, queries: list[str], k: int, location: str | None
    ) -> list[list[Passage]]:
        if self._batcher is not None:  # one encode for this request and its concurrent peers
            return await self._batcher.search(queries, k, location)
        return await anyio.to_thread.run_sync(self._search_all, queries, k, location)

    async def _retrieve(
        self, queries: list[str], k: int, location: str | None
    ) -> tuple[Passage, ...]:
        start = time.perf_counter()
        best: dict[str, Passage] = {}
        try:
            for found in await self._search(queries, k, location):
                for passage in found:
                    if passage.id not in best or passage.score > best[passage.id].score:
                        best[passage.id] = passage
        except Exception as exc:  # any retrieval failure fails the request closed
            raise RetrievalFailed("Knowledge retrieval failed; the request was not sent.") from exc
        finally:
            self._metrics.retrieval_latency.observe(time.perf_counter() - start)
        ranked = sorted(best.values(), key=lambda p: p.score, reverse=True)
        return tuple(ranked[:k])

    async def plan(
        self,
        messages: list[dict[str, Any]],
        options: GroundingOptions | None,
        *,
        constrained_output: bool = False,
    ) -> GroundingPlan:
        """Decide how to ground one request; ``constrained_output`` (JSON/tools) rules out
        a free-text knowledge block, so ``grounded`` degrades to ``inject`` there."""
        start = time.perf_counter()
        options = options or GroundingOptions()
        requested: GroundingMode = options.mode or self._settings.grounding_default_mode
        mode: GroundingMode = requested
        if constrained_output and mode in _WRITES_BLOCK:
            mode = "inject" if mode == "grounded" else "off"
        passages: tuple[Passage, ...] = ()
        warning = None
        if mode != "off":
            k = options.top_k or self._settings.top_k
            try:
                passages = await self._retrieve(retrieval_queries(messages), k, options.location)
            except RetrievalFailed:
                if not self._settings.retrieval_fail_open:
                    raise
                _log.warning("retrieval failed; serving ungrounded (retrieval_fail_open)",
                             exc_info=True)
                warning = "knowledge retrieval failed; the answer is not grounded"
        applied = bool(passages)
        out = grounded_messages(messages, mode, passages) if applied else messages
        technique = options.technique or self._settings.grounding_technique
        chosen = None
        if applied and mode == "grounded":
            chosen = build_technique(
                technique, passages, lambda name: grounded_messages(messages, mode, passages, name),
                ends_with_assistant=messages[-1].get("role") == "assistant",
            )
            out = chosen.messages if chosen else out
        self._metrics.grounding.labels(mode, str(applied).lower()).inc()
        return GroundingPlan(
            requested_mode=requested,
            mode=mode,
            applied=applied,
            passages=passages,
            messages=out,
            strip_knowledge=applied and mode in _WRITES_BLOCK,
            overhead_ms=(time.perf_counter() - start) * 1000,
            technique=chosen,
            requested_technique=technique,
            warning=warning,
        )
