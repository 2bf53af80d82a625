"""One OpenAI-compatible endpoint (target or judge): bounded concurrency, retries, and JSON
schema output with a fallback for servers that refuse it.

Retries with backoff, jitter and ``Retry-After`` on 429/5xx/timeouts are the official
``openai`` client's own (``max_retries``); this module adds the concurrency bound and the
one-time detection of ``response_format`` support. Under the client, plain ``http://``
endpoints use aiohttp (``httpx_aiohttp.AiohttpTransport``, the transport behind the
``openai`` SDK's own ``DefaultAioHttpClient``): httpx's default pool rescans every
connection on each request, which made it about half of the harness's CPU at concurrency
16-64. Endpoints of one run share one transport (one connection pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from typing import Any

import httpx
import openai
from httpx_aiohttp import AiohttpTransport
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field


def aiohttp_applies(base_url: str) -> bool:
    """Whether ``base_url`` gets the aiohttp transport: ``http://`` that no proxy from the
    environment applies to (httpx ignores proxy variables once given a transport)."""
    url = httpx.URL(base_url)
    if url.scheme != "http":
        return False
    return "http" not in urllib.request.getproxies() or bool(urllib.request.proxy_bypass(url.host))


def pooled_transport(connections: int) -> httpx.AsyncBaseTransport:
    """An aiohttp connection pool for up to ``connections`` requests at once."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return AiohttpTransport(limits=limits, trust_env=False)


class EndpointConfig(BaseModel):
    """Where and how to call a model. ``api_key`` is never written to a run manifest."""

    model_config = ConfigDict(frozen=True)

    base_url: str
    model: str
    api_key: str = Field(default="none", repr=False, exclude=True)
    max_retries: int = Field(default=3, ge=0, le=20)
    timeout_s: float = Field(default=120.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=1024)
    temperature: float = 0.0
    top_p: float = 0.9
    seed: int | None = 0
    extra_body: dict[str, Any] | None = None


class Completion(BaseModel):
    """The text a model returned, with what it cost."""

    text: str
    latency_s: float
    structured: bool  # whether the JSON-schema response_format was in force
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    # What a CultureSafe gateway said about the request (absent elsewhere): the body's
    # ``culturesafe`` object and the ``X-CultureSafe-Grounded`` header.
    culturesafe: dict[str, Any] | None = None
    grounded_header: str | None = None


class Endpoint:
    """Sends chat requests to one endpoint, at most ``concurrency`` at a time."""

    def __init__(
        self, config: EndpointConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """``transport``: a pool to share with other endpoints (closed by its owner);
        ``None`` gives this endpoint its own (closed by ``aclose``)."""
        self.config = config
        self.schema_supported: bool | None = None  # unknown until the first schema request
        self._semaphore = asyncio.Semaphore(config.concurrency)
        http_client = None
        self._transport: httpx.AsyncBaseTransport | None = None
        self._own_transport = False
        if aiohttp_applies(config.base_url):
            self._own_transport = transport is None
            self._transport = transport or pooled_transport(config.concurrency)
            # The client closes its transport on close: a shared pool is closed by its owner.
            http_client = httpx.AsyncClient(
                transport=_Borrowed(self._transport), follow_redirects=True,
                timeout=config.timeout_s,
            )
        self._client = AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            max_retries=config.max_retries,
            timeout=config.timeout_s,
            http_client=http_client,
        )

    async def aclose(self) -> None:
        await self._client.close()
        if self._own_transport and self._transport is not None:
            await self._transport.aclose()

    async def check_reachable(self) -> None:
        """Ask for the model list once: raises ``openai.APIConnectionError`` when nothing
        answers (an HTTP error status means the server is there, which is all this checks).
        The raw ``get`` spares importing the client's ``models`` resource and its types
        (most of a resumed run's start-up)."""
        with contextlib.suppress(openai.APIStatusError):
            await self._client.with_options(max_retries=0).get("/models", cast_to=str)

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        schema_name: str = "answer",
        overrides: dict[str, Any] | None = None,
    ) -> Completion:
        """One chat completion; with ``schema``, JSON output is requested and, if the server
        rejects it (400) or refuses, the same request is sent once more without it.
        ``overrides`` replace fields of the body last (``temperature``, ``culturesafe``)."""
        use_schema = schema is not None and self.schema_supported is not False
        if use_schema and schema is not None:
            fmt = {"type": "json_schema",
                   "json_schema": {"name": schema_name, "schema": schema, "strict": True}}
            try:
                done = await self._send(messages, max_tokens, fmt, overrides)
            except openai.BadRequestError:
                self.schema_supported = False
            else:
                if done.text.strip():
                    self.schema_supported = True
                    return done
        return await self._send(messages, max_tokens, None, overrides)

    async def _send(
        self, messages: list[dict[str, str]], max_tokens: int, fmt: dict[str, Any] | None,
        overrides: dict[str, Any] | None = None,
    ) -> Completion:
        cfg = self.config
        body: dict[str, Any] = {
            "model": cfg.model, "messages": messages, "temperature": cfg.temperature,
            "top_p": cfg.top_p, "max_tokens": max_tokens,
        }
        if fmt is not None:
            body["response_format"] = fmt
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        if cfg.extra_body:
            body.update(cfg.extra_body)
        if overrides:
            body.update(overrides)
        async with self._semaphore:
            start = time.perf_counter()
            # The client's documented low-level call: same retries and errors as
            # ``chat.completions.create`` without its per-request TypedDict transform, which
            # costs milliseconds of CPU per request with a JSON schema in the body. The raw
            # response keeps the headers (a gateway's X-CultureSafe-*).
            raw = await self._client.post("/chat/completions", body=body,
                                          cast_to=httpx.Response)
            latency = time.perf_counter() - start
        try:
            data = raw.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise openai.APIResponseValidationError(
                raw, raw.text[:200], message="the chat completion is not a JSON object")
        resp = ChatCompletion.model_construct(**data)
        choice = resp.choices[0] if resp.choices else None
        message = choice.message if choice else None
        refusal = getattr(message, "refusal", None) if message else None
        text = (message.content or "") if message else ""
        return Completion(
            text=text if not refusal else "",
            latency_s=latency,
            structured=fmt is not None,
            prompt_tokens=resp.usage.prompt_tokens if resp.usage else None,
            completion_tokens=resp.usage.completion_tokens if resp.usage else None,
            finish_reason=choice.finish_reason if choice else None,
            culturesafe=data["culturesafe"] if isinstance(data.get("culturesafe"), dict)
            else None,
            grounded_header=raw.headers.get("x-culturesafe-grounded"),
        )


class _Borrowed(httpx.AsyncBaseTransport):
    """A shared transport seen through one client: closing the client leaves it open."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        pass
