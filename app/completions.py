"""The knowledge-grounded method, step two: generate, then clean the answer.

``complete`` runs a non-streaming completion and strips the ``<culture_knowledge>`` block
from each choice. ``GroundedStream`` relays a streaming completion as OpenAI sends it
(``data: {chunk}\\n\\n`` ... ``data: [DONE]\\n\\n``), holding back a knowledge block until
it closes so it never reaches the client, and ending a failed stream with an error frame
followed by ``[DONE]``. The ``culturesafe`` details ride on the first chunk and, with the
extracted knowledge, on each chunk that carries a ``finish_reason``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from app.backends.base import JSON, ChatModel, ChunkStream
from app.errors import GatewayError
from app.grounding import GroundingPlan
from app.knowledge_block import KnowledgeBlockFilter, split_knowledge
from app.protocol import ChatCompletionRequest, CultureSafeDetails, ErrorInfo
from app.techniques.fallback import send_with_fallback
from app.techniques.output import TechniqueStreamFilter, technique_text

log = logging.getLogger(__name__)


def upstream_body(request: ChatCompletionRequest, plan: GroundingPlan) -> JSON:
    """The client's request as sent, with the planned messages and our own field removed."""
    body = request.model_dump(exclude_unset=True, exclude={"culturesafe"})
    body["messages"] = plan.messages
    if plan.technique is not None:
        body.update(plan.technique.extra_body)
    return body


def sse(payload: JSON | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


async def complete(
    model: ChatModel, request: ChatCompletionRequest, plan: GroundingPlan
) -> tuple[JSON, CultureSafeDetails]:
    """A non-streaming grounded completion: the upstream body, cleaned, plus details."""
    data, plan = await send_with_fallback(model.chat, lambda p: upstream_body(request, p), plan)
    start = time.perf_counter()
    knowledge: str | None = None
    if plan.strip_knowledge:
        for choice in data.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                text = technique_text(plan.technique, message["content"])
                message["content"], found = split_knowledge(text)
                knowledge = knowledge or found
    overhead = plan.overhead_ms + (time.perf_counter() - start) * 1000
    details = plan.details(knowledge, overhead_ms=overhead)
    data["culturesafe"] = details.model_dump()
    return data, details


class GroundedStream:
    """Relays one upstream stream to the client as SSE frames."""

    def __init__(self, upstream: ChunkStream, plan: GroundingPlan, *, include_usage: bool) -> None:
        self._upstream = upstream
        self._plan = plan
        self._include_usage = include_usage
        self._filters: dict[int, KnowledgeBlockFilter] = {}
        self._techniques: dict[int, TechniqueStreamFilter] = {}
        self._sent_first = False

    async def frames(self) -> AsyncIterator[str]:
        try:
            async for chunk in self._upstream:
                out = self._transform(chunk)
                if out is not None:
                    yield sse(out)
        except GatewayError as exc:
            log.warning("stream failed: %s %s", type(exc).__name__, exc.message)
            yield sse({"error": exc.info().model_dump()})
        except Exception:
            log.exception("stream failed unexpectedly")
            info = ErrorInfo(message="The server had an internal error.", type="internal_error")
            yield sse({"error": info.model_dump()})
        finally:
            await self._upstream.aclose()
        yield sse("[DONE]")

    def _clean_choice(self, choice: dict[str, Any]) -> dict[str, Any] | None:
        keeper = self._filters.setdefault(int(choice.get("index") or 0), KnowledgeBlockFilter())
        delta = dict(choice.get("delta") or {})
        content = delta.get("content")
        if self._plan.technique is not None:
            index = int(choice.get("index") or 0)
            shaper = self._techniques.setdefault(index, TechniqueStreamFilter(self._plan.technique))
            content = shaper.feed(content if isinstance(content, str) else "")
            if choice.get("finish_reason") is not None:
                content += shaper.finish()
        text = keeper.feed(content) if isinstance(content, str) else None
        if choice.get("finish_reason") is not None:
            text = (text or "") + keeper.finish()
        if text is not None:
            delta["content"] = text
        other = any(key != "content" for key in delta)
        if not text and not other and choice.get("finish_reason") is None:
            return None  # everything in this delta was withheld
        return {**choice, "delta": delta}

    def _transform(self, chunk: JSON) -> JSON | None:
        choices = chunk.get("choices")
        if isinstance(choices, list) and not choices and chunk.get("usage") is not None:
            return chunk if self._include_usage else None
        finished: int | None = None
        if isinstance(choices, list) and choices:
            cleaned = []
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                out = self._clean_choice(choice) if self._plan.strip_knowledge else choice
                if out is None:
                    continue
                if out.get("finish_reason") is not None and finished is None:
                    finished = int(out.get("index") or 0)
                cleaned.append(out)
            if not cleaned:
                return None
            chunk = {**chunk, "choices": cleaned}
        if finished is not None:
            keeper = self._filters.get(finished)
            details = self._plan.details(keeper.knowledge if keeper else None)
            chunk["culturesafe"] = details.model_dump()
        elif not self._sent_first:
            chunk["culturesafe"] = self._plan.details().model_dump()
        self._sent_first = True
        return chunk
