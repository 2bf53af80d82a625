"""``UpstreamChatModel``: an OpenAI-compatible model server over HTTP (vLLM, llama.cpp...).

One pooled ``httpx.AsyncClient`` (owned by the lifespan) carries every call. Failures are
typed: connection refused or unreachable -> ``UpstreamUnavailable`` (502), a read that
times out -> ``UpstreamTimeout`` (504), an upstream 4xx -> passed through with its status
and message, an upstream 5xx -> 502. Connection errors are retried, and only those: they
guarantee no byte of the request reached the upstream, so a retry cannot run a completion
twice. A semaphore bounds concurrent upstream calls; a caller that waits longer than the
queue timeout gets 503 instead of piling up without bound.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from app.backends.base import JSON
from app.backends.errors import (
    Overloaded,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.errors import ServiceNotReady
from app.http.metrics import Metrics

_RETRY_BACKOFF_S = 0.1


class UpstreamChunkStream:
    """The SSE body of an upstream streaming completion, parsed chunk by chunk."""

    def __init__(self, response: httpx.Response, release: Any, metrics: Metrics) -> None:
        self._response = response
        self._release = release
        self._metrics = metrics
        self._closed = False

    def __aiter__(self) -> AsyncIterator[JSON]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[JSON]:
        try:
            async for line in self._response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, ": ping" comments, "event:" lines
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                yield _parse_chunk(data)
        except httpx.TimeoutException as exc:
            self._metrics.upstream_errors.labels("timeout").inc()
            raise UpstreamTimeout("The model server stopped sending mid-stream.") from exc
        except httpx.TransportError as exc:
            self._metrics.upstream_errors.labels("stream_broken").inc()
            raise UpstreamUnavailable("The model server closed the stream early.") from exc
        except UpstreamStatusError:  # an error event mid-stream
            self._metrics.upstream_errors.labels("stream_error").inc()
            raise
        except UpstreamUnavailable:  # a malformed event
            self._metrics.upstream_errors.labels("bad_response").inc()
            raise
        finally:
            await self.aclose()
        self._metrics.upstream_errors.labels("stream_broken").inc()
        raise UpstreamUnavailable("The model server ended the stream without [DONE].")

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._response.aclose()
            self._release()


def _parse_chunk(data: str) -> JSON:
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise UpstreamUnavailable(
            "The model server sent a malformed stream event.", code="upstream_bad_response"
        ) from exc
    if not isinstance(chunk, dict):
        raise UpstreamUnavailable(
            "The model server sent a malformed stream event.", code="upstream_bad_response"
        )
    if chunk.get("error"):
        error = chunk["error"] if isinstance(chunk["error"], dict) else {}
        message = str(error.get("message") or "The model server failed mid-stream.")
        raise UpstreamStatusError(502, message, code="upstream_stream_error")
    return chunk


async def _raise_for_status(response: httpx.Response, metrics: Metrics | None = None) -> None:
    """Translate an upstream error status into a typed error (reads the body); an upstream
    5xx is counted as kind ``server_error`` (4xx are counted by the caller as ``status``)."""
    if response.status_code < 400:
        return
    await response.aread()
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    error = error if isinstance(error, dict) else {}
    status = response.status_code
    if status >= 500:
        if metrics is not None:
            metrics.upstream_errors.labels("server_error").inc()
        raise UpstreamUnavailable(
            f"The model server failed (HTTP {status}).", code="upstream_http_error"
        )
    retry_after = response.headers.get("Retry-After")
    headers = {"Retry-After": retry_after} if retry_after else {}
    code = error.get("code")
    raise UpstreamStatusError(
        status,
        str(error.get("message") or f"The model server rejected the request (HTTP {status})."),
        type=str(error.get("type") or "invalid_request_error"),
        param=error.get("param") if isinstance(error.get("param"), str) else None,
        code=str(code) if code is not None else None,
        headers=headers,
    )


class UpstreamChatModel:
    """``ChatModel`` over an OpenAI-compatible HTTP API."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        model_name: str | None,
        retries: int,
        max_concurrent: int,
        queue_timeout_s: float,
        metrics: Metrics,
    ) -> None:
        self._client = client
        self._chat_url = client.base_url.join("chat/completions")
        self._chat_headers = httpx.Headers(client.headers)
        self._chat_headers["Content-Type"] = "application/json"
        self._timeout = client.timeout.as_dict()
        self._model_name = model_name
        self._retries = retries
        self._slots = asyncio.Semaphore(max_concurrent)
        self._queue_timeout_s = queue_timeout_s
        self._metrics = metrics
        self._chat_latency = metrics.upstream_latency.labels("chat")
        self._stream_latency = metrics.upstream_latency.labels("chat_stream")

    @property
    def model_name(self) -> str | None:
        return self._model_name

    async def _acquire(self) -> None:
        # A free slot and nobody queued: take it without wait_for, which (Python 3.11)
        # wraps the wait in a new task on every call.
        if not self._slots.locked():
            await self._slots.acquire()
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self._queue_timeout_s)
        except TimeoutError:
            self._metrics.upstream_errors.labels("overloaded").inc()
            raise Overloaded(
                "Too many requests are waiting for the model server; retry shortly.",
                headers={"Retry-After": "1"},
            ) from None

    async def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        for attempt in range(self._retries + 1):
            try:
                return await self._client.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == self._retries:
                    self._metrics.upstream_errors.labels("unreachable").inc()
                    raise UpstreamUnavailable("The model server is unreachable.") from exc
                self._metrics.upstream_retries.inc()
                await asyncio.sleep(_RETRY_BACKOFF_S * 2**attempt)
            except httpx.TimeoutException as exc:
                self._metrics.upstream_errors.labels("timeout").inc()
                raise UpstreamTimeout("The model server did not answer in time.") from exc
            except httpx.TransportError as exc:
                self._metrics.upstream_errors.labels("transport").inc()
                raise UpstreamUnavailable("The connection to the model server failed.") from exc
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _chat_request(self, body: JSON) -> httpx.Request:
        if self._model_name is not None:
            body = {**body, "model": self._model_name}
        client = self._client
        if client.cookies:  # an upstream that set cookies (sticky sessions) gets them back
            return client.build_request("POST", "chat/completions", json=body)
        # What ``build_request(json=body)`` builds, from parts merged once in __init__: the
        # merge of URL, headers, cookies and timeout was ~6% of the pass-through CPU.
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return httpx.Request(
            "POST", self._chat_url, headers=self._chat_headers, content=content.encode(),
            extensions={"timeout": self._timeout},
        )

    async def chat(self, body: JSON) -> JSON:
        await self._acquire()
        start = time.perf_counter()
        try:
            response = await self._send(self._chat_request(body), stream=False)
            await _raise_for_status(response, self._metrics)
        except UpstreamStatusError:
            self._metrics.upstream_errors.labels("status").inc()
            raise
        finally:
            self._slots.release()
            self._chat_latency.observe(time.perf_counter() - start)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self._metrics.upstream_errors.labels("bad_response").inc()
            raise UpstreamUnavailable(
                "The model server sent a malformed response.", code="upstream_bad_response"
            )
        return data

    async def open_stream(self, body: JSON) -> UpstreamChunkStream:
        await self._acquire()
        start = time.perf_counter()
        try:
            response = await self._send(self._chat_request(body), stream=True)
            try:
                await _raise_for_status(response, self._metrics)
            except BaseException:
                await response.aclose()
                raise
        except UpstreamStatusError:
            self._metrics.upstream_errors.labels("status").inc()
            self._slots.release()
            raise
        except BaseException:
            self._slots.release()
            raise
        self._stream_latency.observe(time.perf_counter() - start)
        return UpstreamChunkStream(response, self._slots.release, self._metrics)

    async def list_models(self) -> JSON:
        response = await self._send(self._client.build_request("GET", "models"), stream=False)
        await _raise_for_status(response)
        data = response.json()
        if not isinstance(data, dict):
            raise UpstreamUnavailable("The model server sent a malformed model list.")
        return data

    async def check_ready(self) -> None:
        try:
            response = await self._client.get("models", timeout=5.0)
        except httpx.HTTPError as exc:
            raise ServiceNotReady("The model server is not reachable.") from exc
        if response.status_code >= 400:
            raise ServiceNotReady(f"The model server answered HTTP {response.status_code}.")
