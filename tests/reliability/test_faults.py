"""Upstream faults injected by the fake upstream (a fake at the HTTP boundary only).

For every fault: the right status and an OpenAI-shaped body (or, once a stream has
started, an error frame followed by ``data: [DONE]``), a retry only where it is safe, the
metrics counting the error, and nothing leaked: the next request succeeds through the one
upstream slot (``max_concurrent_upstream=1``, so a leaked slot would starve it), and the
process's file descriptors and the gateway's asyncio tasks return to their baseline.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from app.main import create_app
from retrieval.protocols import Retriever
from tests.fakes.loopback import Served, serve
from tests.fakes.openai_server import FakeOpenAI

from .conftest import (
    assert_openai_error,
    gateway_settings,
    metric_value,
    open_fds,
    settle_fds,
    settle_tasks,
)

MESSAGES = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def gateway(fault_server: FakeOpenAI, retriever: Retriever) -> Iterator[Served]:
    settings = gateway_settings(fault_server.base_url, max_concurrent_upstream=1,
                                upstream_queue_timeout_s=3.0)
    with serve(create_app(settings, retriever=retriever)) as served:
        yield served


def _ok(url: str) -> None:
    body = {"model": "ok", "messages": MESSAGES}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "echo: Hello there"


@pytest.fixture(autouse=True)
def no_leaks(gateway: Served, fault_server: FakeOpenAI) -> Iterator[None]:
    """Around each fault: the next request succeeds; fds and tasks are back to baseline."""
    _ok(gateway.url)
    fds, tasks = settle_fds(open_fds()), settle_tasks(gateway, gateway.task_count())
    fault_server.reset()
    yield
    _ok(gateway.url)
    assert settle_fds(fds) <= fds, "file descriptors leaked"
    assert settle_tasks(gateway, tasks) <= tasks, "asyncio tasks leaked"


def _metrics(url: str) -> str:
    return httpx.get(f"{url}/metrics", timeout=30).text


def _errors(text: str, kind: str) -> float:
    return metric_value(text, "culturesafe_upstream_errors_total", kind=kind)


def _sse(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


NON_STREAMING = [
    # model, status, error code, upstream error kind counted, Retry-After passed on
    ("slow", 504, "upstream_timeout", "timeout", None),
    ("drop-before-response", 502, "upstream_unavailable", "transport", None),
    ("status-500", 502, "upstream_http_error", "server_error", None),
    ("status-502", 502, "upstream_http_error", "server_error", None),
    ("status-503", 502, "upstream_http_error", "server_error", None),
    ("status-503-retry-after", 502, "upstream_http_error", "server_error", None),
    ("status-429", 429, "fault_429", "status", None),
    ("status-429-retry-after", 429, "fault_429", "status", "3"),
    ("malformed-json", 502, "upstream_bad_response", "bad_response", None),
]


@pytest.mark.parametrize(("model", "status", "code", "kind", "retry_after"), NON_STREAMING)
def test_fault_server_non_streaming_fault_is_one_attempt_and_a_typed_error(
    gateway: Served, fault_server: FakeOpenAI, model: str, status: int, code: str, kind: str,
    retry_after: str | None,
) -> None:
    before = _metrics(gateway.url)
    response = httpx.post(f"{gateway.url}/v1/chat/completions",
                          json={"model": model, "messages": MESSAGES}, timeout=30)
    assert response.status_code == status
    error = assert_openai_error(response.json())
    assert error["code"] == code
    assert "injected" not in error["message"] or status < 500  # 5xx details stay server-side
    assert response.headers.get("Retry-After") == retry_after
    # The request reached the upstream, so it is never sent twice.
    assert fault_server.attempts[model] == 1
    after = _metrics(gateway.url)
    assert _errors(after, kind) == _errors(before, kind) + 1
    route = {"route": "/v1/chat/completions", "method": "POST", "status": str(status)}
    counted = "culturesafe_http_requests_total"
    assert metric_value(after, counted, **route) == metric_value(before, counted, **route) + 1


STREAM_BROKEN = [
    # model, error code in the final frame, upstream error kind counted
    ("stall-mid-stream", "upstream_timeout", "timeout"),
    ("drop-mid-stream", "upstream_unavailable", "stream_broken"),
    ("malformed-sse", "upstream_bad_response", "bad_response"),
    ("no-done", "upstream_unavailable", "stream_broken"),
]


@pytest.mark.parametrize(("model", "code", "kind"), STREAM_BROKEN)
def test_fault_server_broken_stream_ends_with_error_frame_then_done(
    gateway: Served, fault_server: FakeOpenAI, model: str, code: str, kind: str
) -> None:
    before = _metrics(gateway.url)
    body = {"model": model, "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body,
                      timeout=30) as response:
        assert response.status_code == 200
        events = _sse(response)
    assert events[-1] == "[DONE]"
    error = assert_openai_error(json.loads(events[-2]))
    assert error["code"] == code
    assert all("error" not in json.loads(e) for e in events[:-2])
    assert fault_server.attempts[model] == 1
    assert _errors(_metrics(gateway.url), kind) == _errors(before, kind) + 1


@pytest.mark.parametrize(("model", "status"), [("slow", 504), ("status-503", 502),
                                                ("status-429-retry-after", 429)])
def test_fault_server_stream_failing_before_first_byte_is_a_plain_error(
    gateway: Served, fault_server: FakeOpenAI, model: str, status: int
) -> None:
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0) as client,
        pytest.raises(openai.APIStatusError) as caught,
    ):
        client.chat.completions.create(model=model, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert caught.value.status_code == status
    assert_openai_error({"error": caught.value.body})
    assert fault_server.attempts[model] == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("stream", [False, True])
def test_fault_server_refused_connection_is_retried_then_502(
    stream: bool, retriever: Retriever
) -> None:
    """Refused before any byte was sent: the only fault that is safe to retry."""
    settings = gateway_settings(f"http://127.0.0.1:{_closed_port()}/v1", upstream_retries=2)
    with serve(create_app(settings, retriever=retriever)) as served:
        fds, tasks = settle_fds(open_fds()), served.task_count()
        body: dict[str, Any] = {"model": "ok", "messages": MESSAGES, "stream": stream}
        response = httpx.post(f"{served.url}/v1/chat/completions", json=body, timeout=30)
        assert response.status_code == 502
        assert assert_openai_error(response.json())["code"] == "upstream_unavailable"
        metrics = _metrics(served.url)
        assert metric_value(metrics, "culturesafe_upstream_retries_total") == 2
        assert _errors(metrics, "unreachable") == 1
        assert httpx.get(f"{served.url}/readyz", timeout=30).status_code == 503
        assert settle_fds(fds) <= fds
        assert settle_tasks(served, tasks) <= tasks


def test_fault_server_accept_then_close_is_not_retried(retriever: Retriever) -> None:
    """A connection that is accepted then dropped may have carried the request: one try."""
    with FakeOpenAI() as server:
        settings = gateway_settings(server.base_url, upstream_retries=3)
        with serve(create_app(settings, retriever=retriever)) as served:
            response = httpx.post(f"{served.url}/v1/chat/completions", timeout=30,
                                  json={"model": "drop-before-response", "messages": MESSAGES})
            assert response.status_code == 502
            assert server.attempts["drop-before-response"] == 1
            assert metric_value(_metrics(served.url), "culturesafe_upstream_retries_total") == 0
