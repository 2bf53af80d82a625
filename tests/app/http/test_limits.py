"""Limits: per-key rate with ``Retry-After``, body size, messages and characters per
request, and the ``max_tokens`` cap as the upstream receives it (the loopback fake upstream
records every body it is sent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from app.config import Settings
from app.http.limits import CHAT_TOKEN_FIELDS, RateLimiter
from app.main import create_app
from retrieval.protocols import Retriever
from tests.app.conftest import Gateway, Upstream

KEY_A = "sk-team-a-123456"
KEY_B = "sk-team-b-654321"
MESSAGES = [{"role": "user", "content": "How do people greet each other in Thailand?"}]



def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_rate_limit_is_per_key_with_retry_after(gateway: Gateway) -> None:
    with gateway(api_keys=[KEY_A, KEY_B], rate_limit_rpm=2) as client:
        for _ in range(2):
            assert client.get("/v1/models", headers=_auth(KEY_A)).status_code == 200
        limited = client.get("/v1/models", headers=_auth(KEY_A))
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        # One token comes back every 60 / rpm = 30 s.
        assert 1 <= int(limited.headers["retry-after"]) <= 30
        assert client.get("/v1/models", headers=_auth(KEY_B)).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_openai_sdk_sees_rate_limit_error(gateway: Gateway) -> None:
    with gateway(api_keys=[KEY_A], rate_limit_rpm=1) as client:
        sdk = openai.OpenAI(
            base_url="http://testserver/v1", api_key=KEY_A, http_client=client, max_retries=0
        )
        sdk.models.list()
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.models.list()
        assert caught.value.response.headers["retry-after"].isdigit()


def test_rate_limiter_refills_over_a_minute() -> None:
    now = [0.0]
    limiter = RateLimiter(rpm=3, clock=lambda: now[0])
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k") == pytest.approx(20.0)
    now[0] = 20.0
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("other") == 0.0


def test_oversize_body_is_refused_with_413(gateway: Gateway, fake_upstream: Upstream) -> None:
    received = fake_upstream[1]
    big = [{"role": "user", "content": "x" * 3000}]
    with gateway(max_body_bytes=2048) as client:
        before = len(received)
        sized = client.post("/v1/chat/completions", json={"model": "fake-ok", "messages": big})
        assert sized.status_code == 413
        assert sized.json()["error"]["code"] == "request_too_large"
        # Without Content-Length (chunked), the limit holds while the body is read.
        chunks = (b'{"model": "fake-ok", "messages": [' if i == 0 else b" " * 512 for i in range(8))
        chunked = client.post(
            "/v1/chat/completions", content=chunks, headers={"Content-Type": "application/json"}
        )
        assert chunked.status_code == 413
        assert len(received) == before


def test_too_many_messages_and_characters_are_refused(
    gateway: Gateway, fake_upstream: Upstream
) -> None:
    received = fake_upstream[1]
    with gateway(max_messages=3, max_chars=100) as client:
        before = len(received)
        many = client.post(
            "/v1/chat/completions", json={"model": "fake-ok", "messages": MESSAGES * 4}
        )
        assert many.status_code == 400
        assert many.json()["error"] | {"message": None} == {
            "message": None,
            "type": "invalid_request_error",
            "param": "messages",
            "code": "too_many_messages",
        }
        parts = [{"type": "text", "text": "y" * 60}, {"type": "text", "text": "z" * 60}]
        long = client.post("/v1/chat", json={"messages": [{"role": "user", "content": parts}]})
        assert long.status_code == 400
        assert long.json()["error"]["code"] == "too_many_characters"
        assert len(received) == before
        assert client.post("/v1/chat", json={"messages": MESSAGES}).status_code == 200


@pytest.mark.parametrize(
    ("sent", "forwarded"),
    [
        ({"max_tokens": 5000}, {"max_tokens": 64}),
        ({"max_completion_tokens": 5000}, {"max_completion_tokens": 64}),
        (
            {"max_tokens": 10, "max_completion_tokens": 999},
            {"max_tokens": 10, "max_completion_tokens": 64},
        ),
        ({}, {"max_tokens": 64}),
    ],
    ids=["max_tokens", "max_completion_tokens", "both", "neither"],
)
def test_max_tokens_cap_reaches_the_upstream(
    gateway: Gateway, fake_upstream: Upstream, sent: dict[str, int], forwarded: dict[str, int]
) -> None:
    received = fake_upstream[1]
    with gateway(max_tokens_cap=64) as client:
        body = {"model": "fake-ok", "messages": MESSAGES, **sent}
        assert client.post("/v1/chat/completions", json=body).status_code == 200
        upstream = received[-1]
        assert {k: upstream.get(k) for k in forwarded} == forwarded
        for field in CHAT_TOKEN_FIELDS["/v1/chat/completions"]:
            if field not in forwarded:
                assert field not in upstream


def test_max_tokens_cap_applies_to_simple_chat_and_streams(
    gateway: Gateway, fake_upstream: Upstream
) -> None:
    received = fake_upstream[1]
    with gateway(max_tokens_cap=32) as client:
        simple = client.post("/v1/chat", json={"messages": MESSAGES, "max_tokens": 900})
        assert simple.status_code == 200
        assert received[-1]["max_tokens"] == 32
        stream = {"model": "fake-ok", "messages": MESSAGES, "stream": True, "max_tokens": 900}
        with client.stream("POST", "/v1/chat/completions", json=stream) as response:
            assert response.status_code == 200
            assert "".join(response.iter_text()).rstrip().endswith("data: [DONE]")
        assert received[-1]["max_tokens"] == 32


def test_every_route_with_messages_is_checked(retriever: Retriever) -> None:
    app = create_app(Settings(index_dir=Path("unused")), retriever=retriever)
    with_messages = {
        path
        for path, operation in _post_operations(app.openapi())
        if "messages" in _body_properties(app.openapi(), operation)
    }
    assert with_messages == set(CHAT_TOKEN_FIELDS)


def _post_operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        if "post" in item:
            yield path, item["post"]


def _body_properties(spec: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    if ref:
        schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return set(schema.get("properties", {}))
