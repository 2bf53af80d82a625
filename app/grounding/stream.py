"""``GroundedStream``: a streaming completion relayed to the client as OpenAI sends it.

Frames are ``data: {chunk}\\n\\n`` ... ``data: [DONE]\\n\\n``. A knowledge block is held
back until it closes, so it never reaches the client; a failed stream ends with an error
frame followed by ``[DONE]``. The ``culturesafe`` details ride on the first chunk and, with
the extracted knowledge, on each chunk that carries a ``finish_reason``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from app.backends.base import JSON, ChunkStream
from app.errors import GatewayError
from app.grounding.knowledge_block import KnowledgeBlockFilter
from app.grounding.plan import GroundingPlan
from app.grounding.techniques.output import TechniqueStreamFilter
from app.protocol import ErrorInfo

log = logging.getLogger(__name__)


def sse(payload: JSON | str) -> str:
    """One server-sent event frame."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


class GroundedStream:
    """Relays one upstream stream to the client as SSE frames."""

    def __init__(self, upstream: ChunkStream, plan: GroundingPlan, *, include_usage: bool) -> None:
        self._upstream = upstream
        self._plan = plan
        self._include_usage = include_usage
        self._block_filters: dict[int, KnowledgeBlockFilter] = {}  # per choice index
        self._technique_filters: dict[int, TechniqueStreamFilter] = {}
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
        block_filter = self._block_filters.setdefault(
            int(choice.get("index") or 0), KnowledgeBlockFilter())
        delta = dict(choice.get("delta") or {})
        content = delta.get("content")
        if self._plan.technique is not None:
            index = int(choice.get("index") or 0)
            technique_filter = self._technique_filters.setdefault(
                index, TechniqueStreamFilter(self._plan.technique))
            content = technique_filter.feed(content if isinstance(content, str) else "")
            if choice.get("finish_reason") is not None:
                content += technique_filter.finish()
        text = block_filter.feed(content) if isinstance(content, str) else None
        if choice.get("finish_reason") is not None:
            text = (text or "") + block_filter.finish()
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
            block_filter = self._block_filters.get(finished)
            details = self._plan.details(block_filter.knowledge if block_filter else None)
            chunk["culturesafe"] = details.model_dump()
        elif not self._sent_first:
            chunk["culturesafe"] = self._plan.details().model_dump()
        self._sent_first = True
        return chunk
