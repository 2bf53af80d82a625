"""Upstream faults, injected at the HTTP boundary by the fake upstream (the model name
picks the fault: ``slow``, ``status-500``...) or a closed port: the gateway answers with
the right OpenAI-shaped error and streams end with an error frame and ``[DONE]``."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import openai
import pytest

from app.main import create_app
from retrieval.protocols import Retriever

from .conftest import serve, upstream_settings

MESSAGES = [{"role": "user", "content": "Hello there"}]


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


def test_fault_upstream_timeout_is_504(fake_gateway: str) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        _client(fake_gateway).chat.completions.create(model="slow", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 504
    assert caught.value.body["code"] == "upstream_timeout"  # type: ignore[index]


def test_fault_upstream_500_is_502_without_its_details(fake_gateway: str) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        _client(fake_gateway).chat.completions.create(model="status-500", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert "injected" not in caught.value.message


def test_fault_upstream_429_and_400_pass_through(fake_gateway: str) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        _client(fake_gateway).chat.completions.create(
            model="status-429-retry-after", messages=MESSAGES  # type: ignore[arg-type]
        )
    assert limited.value.response.headers["Retry-After"] == "3"
    assert limited.value.body["code"] == "fault_429"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        _client(fake_gateway).chat.completions.create(model="status-400", messages=MESSAGES)  # type: ignore[arg-type]
    assert bad.value.body["param"] == "temperature"  # type: ignore[index]


def test_fault_stream_dropped_midway_ends_with_error_frame_and_done(fake_gateway: str) -> None:
    body = {"model": "drop-mid-stream", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{fake_gateway}/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "upstream_unavailable" and "Traceback" not in error["message"]
    stream = _client(fake_gateway).chat.completions.create(
        model="drop-mid-stream",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
    )
    with pytest.raises(openai.APIError, match="closed the stream early"):
        list(stream)


def test_fault_stream_that_fails_before_the_first_byte_is_a_plain_error(
    fake_gateway: str,
) -> None:
    with pytest.raises(openai.RateLimitError):
        _client(fake_gateway).chat.completions.create(
            model="status-429-retry-after",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_fault_connection_refused_is_retried_then_502(retriever: Retriever) -> None:
    settings = upstream_settings(f"http://127.0.0.1:{_closed_port()}/v1", upstream_retries=2)
    with serve(create_app(settings, retriever=retriever)) as url:
        with pytest.raises(openai.APIStatusError) as caught:
            _client(url).chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert caught.value.status_code == 502
        metrics = httpx.get(f"{url}/metrics").text
        assert "culturesafe_upstream_retries_total 2.0" in metrics
        assert httpx.get(f"{url}/readyz").status_code == 503
        assert httpx.get(f"{url}/healthz").status_code == 200


async def test_fault_backpressure_answers_503_when_the_queue_wait_times_out(
    fake_upstream: tuple[str, list[object]], retriever: Retriever
) -> None:
    settings = upstream_settings(
        fake_upstream[0],
        read_timeout_s=10.0,
        max_concurrent_upstream=1,
        upstream_queue_timeout_s=0.2,
        index_dir=Path("unused"),
    )
    with serve(create_app(settings, retriever=retriever)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            slow = asyncio.create_task(
                http.post("/v1/chat/completions", json={"model": "slow", "messages": MESSAGES})
            )
            await asyncio.sleep(0.5)  # let the slow request take the only upstream slot
            waiting = await http.post(
                "/v1/chat/completions", json={"model": "fake-ok", "messages": MESSAGES}
            )
            assert waiting.status_code == 503
            assert waiting.json()["error"]["code"] == "upstream_queue_timeout"
            assert waiting.headers["Retry-After"] == "1"
            assert (await slow).status_code == 200
            after = await http.post(
                "/v1/chat/completions", json={"model": "fake-ok", "messages": MESSAGES}
            )
            assert after.status_code == 200  # the slot was released


async def test_fault_client_disconnect_mid_stream_releases_the_upstream_slot(
    fake_upstream: tuple[str, list[object]], retriever: Retriever
) -> None:
    settings = upstream_settings(
        fake_upstream[0],
        read_timeout_s=10.0,
        max_concurrent_upstream=1,
        upstream_queue_timeout_s=8.0,
    )
    body = {"model": "trickle", "messages": MESSAGES, "stream": True}
    with serve(create_app(settings, retriever=retriever)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        break  # walk away after the first chunk
            # The only upstream slot must come back long before the trickle would end.
            after = await http.post(
                "/v1/chat/completions", json={"model": "fake-ok", "messages": MESSAGES}
            )
            assert after.status_code == 200
