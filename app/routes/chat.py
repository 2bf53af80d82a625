"""``POST /v1/chat/completions`` (OpenAI's API) and ``POST /v1/chat`` (ours)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from app.backends.base import JSON
from app.deps import GroundingDep, ModelDep
from app.errors import InvalidRequest
from app.grounding.respond import respond
from app.grounding.service import output_is_constrained
from app.protocol import (
    AssistantMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CultureSafeDetails,
    ErrorResponse,
    GroundingSummary,
    SimpleChatRequest,
    SimpleChatResponse,
)

router = APIRouter(tags=["chat"])

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Invalid request (the offending field is in `param`)",
        401: "Missing or invalid API key",
        413: "Request body larger than `CULTURESAFE_MAX_BODY_BYTES`",
        429: "Rate limited (here or by the upstream)",
        502: "The model server is unreachable or failed",
        503: "Overloaded or not ready",
        504: "The model server timed out",
    }.items()
}


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
        messages, request.culturesafe, constrained_output=output_is_constrained(request)
    )
    return await respond(model, request, plan)


def _simple_body(data: JSON, details: CultureSafeDetails) -> JSON:
    """A completion in ``/v1/chat``'s shape: the first answer, citations, what grounding did."""
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return SimpleChatResponse(
        message=AssistantMessage(content=message.get("content")),
        citations=details.citations,
        grounding=GroundingSummary(
            applied=details.applied, mode=details.mode, knowledge=details.knowledge
        ),
        usage=data.get("usage"),
    ).model_dump()


@router.post("/v1/chat", response_model=SimpleChatResponse, responses=ERROR_RESPONSES)
async def chat(request: SimpleChatRequest, model: ModelDep, grounding: GroundingDep) -> Response:
    """Our simpler chat API: one answer, its citations and what grounding did."""
    fields = request.model_dump(exclude_unset=True, exclude={"grounding", "messages"})
    messages = [m.model_dump(exclude_unset=True) for m in request.messages]
    completion = ChatCompletionRequest.model_validate({**fields, "messages": messages})
    plan = await grounding.plan(messages, request.grounding)
    return await respond(model, completion, plan, render=_simple_body)
