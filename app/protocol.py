"""The wire schema: OpenAI Chat Completions models, our ``/v1/chat`` models, errors.

Named as OpenAI names them (as vLLM's ``entrypoints/openai/protocol.py`` does). The
OpenAI-facing models accept unknown fields (``extra="allow"``) so that whatever a client
sends is forwarded to the upstream rather than dropped. Only fields the gateway itself
reads are typed here; the rest ride along untouched. This module imports no engine code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from app.config import GroundingMode, GroundingTechnique, Intent


def json_number(value: Any) -> Any:
    """A JSON number only: pydantic's lax mode would take ``true`` or ``"5"`` for one
    (56.0 stays fine for an integer, as in JSON Schema)."""
    if isinstance(value, bool | str):
        raise ValueError("must be a number")
    return value


Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class OpenAIBaseModel(BaseModel):
    """Base of the OpenAI-facing models: unknown fields are kept and forwarded."""

    model_config = ConfigDict(extra="allow")


class StrictModel(BaseModel):
    """Base of our own option models: a misspelt field is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class ChatMessage(OpenAIBaseModel):
    """One message; ``content`` is a string, a list of content parts, or null (tool calls)."""

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class StreamOptions(OpenAIBaseModel):
    include_usage: StrictBool | None = None


class GroundingOptions(StrictModel):
    """Per-request grounding choices (``extra_body={"culturesafe": {...}}`` in the SDK)."""

    mode: GroundingMode | None = Field(
        default=None, description="off | elicit | inject | grounded; default from settings"
    )
    technique: GroundingTechnique | None = Field(
        default=None, description="how grounded enforces the knowledge; default from settings"
    )
    top_k: int | None = Field(default=None, ge=1, le=50)

    _numbers = field_validator("top_k", mode="before")(json_number)
    location: str | None = Field(default=None, min_length=1, max_length=200)
    intent: Intent | None = Field(
        default=None, description="the request's intent, when the application knows it "
        "(overrides the intent gate): not_cultural | cultural_question | disparaging"
    )


class ChatCompletionRequest(OpenAIBaseModel):
    """``POST /v1/chat/completions``: OpenAI's request; unknown fields pass through."""

    # Numbers and flags take JSON numbers and booleans only, as the schema says.
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    culturesafe: GroundingOptions | None = None

    _numbers = field_validator("n", "max_tokens", "max_completion_tokens", mode="before")(
        json_number
    )


class Citation(BaseModel):
    """A verified description given to the model, labelled ``[index]`` in the prompt."""

    index: int
    id: str
    location: str
    description: str
    score: float


class CultureSafeDetails(BaseModel):
    """What grounding did to a request (the ``culturesafe`` field of every response)."""

    applied: bool
    mode: GroundingMode
    requested_mode: GroundingMode
    citations: list[Citation] = []
    knowledge: str | None = None
    overhead_ms: float = 0.0
    technique: GroundingTechnique | None = None  # the one used (grounded and applied only)
    requested_technique: GroundingTechnique | None = None
    technique_fallback: str | None = None  # why the requested technique was not used
    prefill: str | None = None  # answer text the gateway wrote itself (its opening)
    intent: Intent | None = None  # the intent the answer's voice followed
    intent_score: float | None = None  # the intent gate's probability of that intent
    sampling: dict[str, int | float] | None = None  # sampling fields the gateway added


class ChatCompletionResponse(OpenAIBaseModel):
    """The upstream's completion, content cleaned, with ``culturesafe`` added."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None
    culturesafe: CultureSafeDetails | None = None


class ModelCard(OpenAIBaseModel):
    id: str
    object: str = "model"
    created: int | None = None
    owned_by: str | None = None


class ModelList(OpenAIBaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class SimpleChatRequest(StrictModel):
    """``POST /v1/chat``: our smaller API."""

    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    grounding: GroundingOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None

    _numbers = field_validator("max_tokens", "temperature", "seed", mode="before")(json_number)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None


class GroundingSummary(BaseModel):
    applied: bool
    mode: GroundingMode
    knowledge: str | None = None


class SimpleChatResponse(BaseModel):
    message: AssistantMessage
    citations: list[Citation]
    grounding: GroundingSummary
    usage: dict[str, Any] | None = None


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorInfo


class HealthStatus(BaseModel):
    status: Literal["ok", "ready"]
    checks: dict[str, str] = {}
