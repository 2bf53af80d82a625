"""The knowledge-grounded method, step two: send the plan, then clean the answer.

:func:`respond` is the one call both chat routes make: it sends the planned request
upstream (falling back to the prompt-only request when the upstream refuses a technique,
streamed or not), strips the ``<culture_knowledge>`` block, and returns a
``JSONResponse`` or, for ``stream: true``, a ``StreamingResponse`` of SSE frames
(:class:`~app.grounding.stream.GroundedStream`). The ``X-CultureSafe-*`` headers say
whether the answer was grounded and what grounding cost.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from app.backends.base import JSON, ChatModel
from app.grounding.knowledge_block import split_knowledge
from app.grounding.plan import GroundingPlan
from app.grounding.stream import GroundedStream
from app.grounding.techniques.fallback import send_with_fallback
from app.grounding.techniques.output import technique_text
from app.protocol import ChatCompletionRequest, CultureSafeDetails

T = TypeVar("T")
# What a route makes of a finished completion: the body it returns (default: as is).
Render = Callable[[JSON, CultureSafeDetails], JSON]
# A client that sets any of these chose its own decoding: the gateway adds no penalty.
PENALTY_FIELDS = frozenset({"repeat_penalty", "repetition_penalty", "frequency_penalty",
                            "presence_penalty", "dry_multiplier"})


def upstream_body(request: ChatCompletionRequest, plan: GroundingPlan) -> JSON:
    """The client's request as sent, with the planned messages and our own field removed."""
    body = request.model_dump(exclude_unset=True, exclude={"culturesafe"})
    body["messages"] = plan.messages
    body.update(plan.sampling)  # empty when the client chose (:func:`with_client_decoding`)
    if plan.technique is not None:
        body.update(plan.technique.extra_body)
    return body


def with_client_decoding(request: ChatCompletionRequest, plan: GroundingPlan) -> GroundingPlan:
    """``plan`` without its sampling fields when the client set a penalty of its own."""
    sent = set(request.model_dump(exclude_unset=True))
    if plan.sampling and sent & (PENALTY_FIELDS | set(plan.sampling)):
        return replace(plan, sampling={})
    return plan


def grounding_headers(
    applied: bool, overhead_ms: float, warning: str | None = None
) -> dict[str, str]:
    """The ``X-CultureSafe-*`` headers of a response."""
    headers = {
        "X-CultureSafe-Grounded": "true" if applied else "false",
        "X-CultureSafe-Overhead-Ms": f"{overhead_ms:.1f}",
    }
    if warning:
        headers["X-CultureSafe-Warning"] = warning
    return headers


async def _send(
    send: Callable[[JSON], Awaitable[T]], request: ChatCompletionRequest, plan: GroundingPlan
) -> tuple[T, GroundingPlan]:
    """``send`` the planned request, with the technique fallback (streamed or not)."""
    return await send_with_fallback(send, lambda p: upstream_body(request, p), plan)


async def complete(
    model: ChatModel, request: ChatCompletionRequest, plan: GroundingPlan
) -> tuple[JSON, CultureSafeDetails]:
    """A non-streaming grounded completion: the upstream body, cleaned, plus details."""
    data, plan = await _send(model.chat, request, plan)
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


async def respond(
    model: ChatModel,
    request: ChatCompletionRequest,
    plan: GroundingPlan,
    *,
    render: Render | None = None,
) -> Response:
    """Answer ``request`` as ``plan`` says: a JSON completion, or an SSE stream.

    Args:
        model: the chat model the request goes to.
        request: the client's request (``stream`` chooses the response kind).
        plan: what grounding decided (:meth:`app.grounding.service.GroundingService.plan`).
        render: turns the cleaned completion and its details into the body to return
            (``/v1/chat``'s simpler shape); not used for streams.
    """
    plan = with_client_decoding(request, plan)
    if request.stream:
        upstream, plan = await _send(model.open_stream, request, plan)
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        stream = GroundedStream(upstream, plan, include_usage=include_usage)
        return StreamingResponse(
            stream.frames(),
            media_type="text/event-stream",
            headers={
                **grounding_headers(plan.applied, plan.overhead_ms, plan.warning),
                "Cache-Control": "no-cache",
            },
            background=BackgroundTask(upstream.aclose),
        )
    data, details = await complete(model, request, plan)
    body = render(data, details) if render is not None else data
    headers = grounding_headers(details.applied, details.overhead_ms, plan.warning)
    return JSONResponse(body, headers=headers)
