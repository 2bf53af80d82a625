"""``POST /v1/chat/completions`` (OpenAI's API) and ``POST /v1/chat`` (ours)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from app.completions import GroundedStream, complete, upstream_body
from app.deps import GroundingDep, ModelDep
from app.errors import InvalidRequest
from app.protocol import (
    AssistantMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ErrorResponse,
    GroundingSummary,
    SimpleChatRequest,
    SimpleChatResponse,
)
from app.techniques.fallback import send_with_fallback

router = APIRouter(tags=["chat"])

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Invalid request (the offending field is in `param`)",
        401: "Missing or invalid API key",
        429: "Rate limited (here or by the upstream)",
        502: "The model server is unreachable or failed",
        503: "Overloaded or not ready",
        504: "The model server timed out",
    }.items()
}


def _headers(applied: bool, overhead_ms: float, warning: str | None = None) -> dict[str, str]:
    headers = {
        "X-CultureSafe-Grounded": "true" if applied else "false",
        "X-CultureSafe-Overhead-Ms": f"{overhead_ms:.1f}",
    }
    if warning:
        headers["X-CultureSafe-Warning"] = warning
    return headers


def _output_inspected(request: ChatCompletionRequest) -> bool:
    """Outputs where a knowledge block cannot be written or would leak (JSON, tools,
    token logprobs): ``grounded`` then injects knowledge without asking for the block."""
    extra = request.model_extra or {}
    fmt = (request.response_format or {}).get("type")
    return bool(request.tools) or fmt not in (None, "text") or bool(extra.get("logprobs"))


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses={
        200: {
            "model": ChatCompletionResponse,
            "content": {"text/event-stream": {}},
            "description": "A completion, or an SSE stream of chunks when `stream` is true",
        },
        **ERROR_RESPONSES,
    },
)
async def create_chat_completion(
    request: ChatCompletionRequest, model: ModelDep, grounding: GroundingDep
) -> Response:
    """OpenAI Chat Completions, grounded in verified cultural knowledge."""
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest(
            "stream_options is only allowed when stream is true.", param="stream_options"
        )
    messages = [m.model_dump(exclude_unset=True) for m in request.messages]
    plan = await grounding.plan(
        messages, request.culturesafe, constrained_output=_output_inspected(request)
    )
    if request.stream:
        upstream, plan = await send_with_fallback(
            model.open_stream, lambda p: upstream_body(request, p), plan
        )
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        stream = GroundedStream(upstream, plan, include_usage=include_usage)
        return StreamingResponse(
            stream.frames(),
            media_type="text/event-stream",
            headers={
                **_headers(plan.applied, plan.overhead_ms, plan.warning),
                "Cache-Control": "no-cache",
            },
            background=BackgroundTask(upstream.aclose),
        )
    data, details = await complete(model, request, plan)
    return JSONResponse(data, headers=_headers(details.applied, details.overhead_ms, plan.warning))


@router.post("/v1/chat", response_model=SimpleChatResponse, responses=ERROR_RESPONSES)
async def chat(
    request: SimpleChatRequest, model: ModelDep, grounding: GroundingDep
) -> JSONResponse:
    """Our simpler chat API: one answer, its citations and what grounding did."""
    fields = request.model_dump(exclude_unset=True, exclude={"grounding", "messages"})
    completion = ChatCompletionRequest.model_validate(
        {**fields, "messages": [m.model_dump(exclude_unset=True) for m in request.messages]}
    )
    messages = [m.model_dump(exclude_unset=True) for m in request.messages]
    plan = await grounding.plan(messages, request.grounding)
    data, details = await complete(model, completion, plan)
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") or {}
    body = SimpleChatResponse(
        message=AssistantMessage(content=message.get("content")),
        citations=details.citations,
        grounding=GroundingSummary(
            applied=details.applied, mode=details.mode, knowledge=details.knowledge
        ),
        usage=data.get("usage"),
    )
    headers = _headers(details.applied, details.overhead_ms, plan.warning)
    return JSONResponse(body.model_dump(), headers=headers)
