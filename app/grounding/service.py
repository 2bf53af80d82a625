"""The knowledge-grounded method, step one: decide how to ground a request.

``GroundingService.plan`` takes the client's messages and options and returns a
:class:`~app.grounding.plan.GroundingPlan`: the messages to send upstream, the passages
given to the model, and whether the answer will carry a ``<culture_knowledge>`` block to
strip. Modes:

* ``off``: the messages go upstream untouched; no retrieval.
* ``elicit``: the model is asked to write the relevant knowledge itself, then answer.
* ``inject``: the retrieved, verified descriptions precede the conversation.
* ``grounded``: inject, and the model first restates the custom and why it matters,
  citing ``[n]``, then answers respectfully; the block is removed from the answer. The
  answer's voice follows the request's intent (:mod:`app.grounding.voice`).

The queries (:mod:`app.grounding.queries`) are embedded in one call, batched with
concurrent requests' (:mod:`app.grounding.batcher`), and the intent gate judges the same
vectors (``retrieve_many``): a request it calls ``not_cultural``, or where nothing passes
the similarity threshold, goes upstream unchanged (``applied: false``). The client's
``culturesafe.intent`` overrides the gate (retrieval is then by threshold alone).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from app.config import GroundingMode, Intent, Settings
from app.grounding.batcher import QueryBatcher
from app.grounding.errors import RetrievalFailed
from app.grounding.intents import merged, request_intent
from app.grounding.plan import GroundingPlan
from app.grounding.prompt import grounded_messages
from app.grounding.queries import retrieval_queries
from app.grounding.techniques.prompting import build_technique
from app.grounding.voice import technique_in_voice, template_for, voice_of
from app.http.metrics import Metrics
from app.protocol import ChatCompletionRequest, GroundingOptions
from retrieval.models import Passage, Retrieval
from retrieval.protocols import Retriever

_log = logging.getLogger(__name__)
_WRITES_BLOCK: frozenset[GroundingMode] = frozenset({"elicit", "grounded"})


def output_is_constrained(request: ChatCompletionRequest) -> bool:
    """Outputs where a knowledge block cannot be written or would leak (JSON, tools,
    token logprobs): ``grounded`` then injects knowledge without asking for the block."""
    extra = request.model_extra or {}
    fmt = (request.response_format or {}).get("type")
    return bool(request.tools) or fmt not in (None, "text") or bool(extra.get("logprobs"))


class GroundingService:
    """Retrieval plus prompt construction, shared by every chat route."""

    def __init__(self, retriever: Retriever, settings: Settings, metrics: Metrics) -> None:
        self._retriever = retriever
        self._settings = settings
        self._metrics = metrics
        retrieve_many = getattr(retriever, "retrieve_many", None)
        self._gated = settings.intent_gate and callable(retrieve_many)
        # Per "use the gate": how several queries are searched (one encode for all).
        self._many: dict[bool, Callable[[Sequence[str], int, str | None], list[Retrieval]]] = {}
        plain = _plain(getattr(retriever, "search_many", None))
        if plain is not None:
            self._many[False] = plain
        if self._gated:
            self._many[True] = retrieve_many  # type: ignore[assignment]
        self._batchers = {
            gated: QueryBatcher(many, settings.query_batch_size,
                                workers=settings.query_batch_workers, cut=Retrieval.top)
            for gated, many in self._many.items()
        } if settings.query_batch_size > 1 else {}

    def _search_all(
        self, queries: list[str], k: int, location: str | None
    ) -> list[Retrieval]:
        """Every query in one worker-thread hop (retrievers without ``search_many``)."""
        return [Retrieval(self._retriever.search(query, k, location)) for query in queries]

    async def _search(
        self, queries: list[str], k: int, location: str | None, gated: bool
    ) -> list[Retrieval]:
        gated = gated and self._gated
        batcher = self._batchers.get(gated)
        if batcher is not None:  # one encode for this request and its concurrent peers
            return await batcher.search(queries, k, location)
        many = self._many.get(gated, self._search_all)
        return await anyio.to_thread.run_sync(many, queries, k, location)

    async def _retrieve(
        self, queries: list[str], k: int, location: str | None, gated: bool
    ) -> tuple[tuple[Passage, ...], list[Retrieval]]:
        start = time.perf_counter()
        try:
            found = await self._search(queries, k, location, gated)
        except Exception as exc:  # any retrieval failure fails the request closed
            raise RetrievalFailed("Knowledge retrieval failed; the request was not sent.") from exc
        finally:
            self._metrics.retrieval_latency.observe(time.perf_counter() - start)
        return merged(found, k), found

    def _sampling(self) -> dict[str, int | float]:
        """What a grounded request adds to the upstream body against loops."""
        if self._settings.backend == "embedded":
            return dict(self._settings.embedded_grounded_sampling)
        return dict(self._settings.upstream_grounded_sampling)

    async def plan(
        self,
        messages: list[dict[str, Any]],
        options: GroundingOptions | None,
        *,
        constrained_output: bool = False,
        intent: Intent | None = None,
        intent_score: float | None = None,
    ) -> GroundingPlan:
        """Decide how to ground one request; ``constrained_output`` (JSON/tools) rules out
        a free-text knowledge block, so ``grounded`` degrades to ``inject`` there.
        ``intent`` (the intent gate's, with its probability) picks the answer's voice;
        the client's ``culturesafe.intent`` overrides it; unknown: the disparaging voice."""
        start = time.perf_counter()
        options = options or GroundingOptions()
        requested: GroundingMode = options.mode or self._settings.grounding_default_mode
        mode: GroundingMode = requested
        if constrained_output and mode in _WRITES_BLOCK:
            mode = "inject" if mode == "grounded" else "off"
        if options.intent is not None:
            intent, intent_score = options.intent, None
        source = "none" if intent is None else "client"
        passages: tuple[Passage, ...] = ()
        warning = None
        if mode != "off" and intent != "not_cultural":
            k = options.top_k or self._settings.top_k
            try:
                passages, found = await self._retrieve(
                    retrieval_queries(messages), k, options.location, gated=intent is None)
                if intent is None and (verdict := request_intent(found)) is not None:
                    intent, intent_score = verdict
                    source = "gate"
            except RetrievalFailed:
                if not self._settings.retrieval_fail_open:
                    raise
                _log.warning("retrieval failed; serving ungrounded (retrieval_fail_open)",
                             exc_info=True)
                warning = "knowledge retrieval failed; the answer is not grounded"
        applied = bool(passages)
        voice = voice_of(intent)
        out = (grounded_messages(messages, mode, passages, template_for(voice, mode))
               if applied else messages)
        requested_technique = options.technique or self._settings.grounding_technique
        technique, voice_note = technique_in_voice(requested_technique, voice)
        chosen = None
        if applied and mode == "grounded":
            chosen = build_technique(
                technique, passages,
                lambda template: grounded_messages(
                    messages, mode, passages, template_for(voice, template)),
                ends_with_assistant=messages[-1].get("role") == "assistant",
                voice=voice,
            )
            out = chosen.messages if chosen else out
        self._metrics.grounding.labels(mode, str(applied).lower()).inc()
        if mode != "off":
            self._metrics.intents.labels(intent or "unknown", source).inc()
        return GroundingPlan(
            requested_mode=requested,
            mode=mode,
            applied=applied,
            passages=passages,
            messages=out,
            strip_knowledge=applied and mode in _WRITES_BLOCK,
            overhead_ms=(time.perf_counter() - start) * 1000,
            technique=chosen,
            requested_technique=requested_technique,
            technique_fallback=voice_note if applied and mode == "grounded" else None,
            warning=warning,
            intent=intent,
            intent_score=intent_score,
            sampling=self._sampling() if applied else {},
        )


def _plain(
    search_many: Any,
) -> Callable[[Sequence[str], int, str | None], list[Retrieval]] | None:
    """``search_many`` giving :class:`~retrieval.models.Retrieval`s without a verdict."""
    if not callable(search_many):
        return None

    def many(queries: Sequence[str], k: int, location: str | None) -> list[Retrieval]:
        return [Retrieval(found) for found in search_many(queries, k, location)]

    return many
