"""The official ``openai`` client against the real gateway (uvicorn on loopback) in front
of a fake OpenAI-compatible upstream: wire format, pass-through and grounding details."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

TIP = "Is it rude to leave a tip for the waiter at a restaurant in Japan?"
PLAIN = "Write a Python function that reverses a linked list."


@pytest.fixture
def client(fake_gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{fake_gateway}/v1", api_key="x", max_retries=0)


@pytest.fixture
def received(fake_upstream: tuple[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    fake_upstream[1].clear()
    return fake_upstream[1]


def test_non_streaming_completion_with_culturesafe_field(
    client: openai.OpenAI, received: list[dict[str, Any]]
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="knowledge", messages=[{"role": "user", "content": TIP}]
    )
    resp = raw.parse()
    assert resp.choices[0].message.content == "Thanks for asking! In Japan you do not need to tip."
    assert resp.usage is not None and resp.usage.total_tokens == 12
    details = (resp.model_extra or {})["culturesafe"]
    assert details == resp.to_dict()["culturesafe"]
    assert details["applied"] is True and details["mode"] == "grounded"
    assert details["knowledge"] == "In Japan tipping is not customary [1]."
    assert details["citations"][0]["id"] == "starter-jp-001"
    assert raw.headers["X-CultureSafe-Grounded"] == "true"
    assert float(raw.headers["X-CultureSafe-Overhead-Ms"]) > 0
    sent = received[-1]
    assert sent["messages"][0]["role"] == "system" and "culturesafe" not in sent


def test_streaming_chunks_reassemble_with_usage_and_done(
    client: openai.OpenAI, fake_gateway: str
) -> None:
    stream = client.chat.completions.create(
        model="knowledge",
        messages=[{"role": "user", "content": TIP}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Thanks for asking! In Japan you do not need to tip."
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 12
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert (finals[0].model_extra or {})["culturesafe"]["knowledge"].startswith("In Japan")
    body = {
        "model": "knowledge",
        "messages": [{"role": "user", "content": TIP}],
        "stream": True,
    }
    raw = httpx.post(f"{fake_gateway}/v1/chat/completions", json=body, timeout=30).text
    assert raw.endswith("data: [DONE]\n\n")
    assert "culture_knowledge" not in raw.replace('"knowledge"', "")
    assert '"usage": {' not in raw  # no usage chunk unless asked for


def test_extra_body_grounding_off_and_non_cultural(
    client: openai.OpenAI, received: list[dict[str, Any]]
) -> None:
    messages: Any = [{"role": "user", "content": TIP}]
    off = client.chat.completions.create(
        model="fake-ok", messages=messages, extra_body={"culturesafe": {"mode": "off"}}
    )
    assert (off.model_extra or {})["culturesafe"]["applied"] is False
    assert received[-1]["messages"] == messages
    plain = client.chat.completions.create(
        model="fake-ok", messages=[{"role": "user", "content": PLAIN}]
    )
    details = (plain.model_extra or {})["culturesafe"]
    assert details["applied"] is False and details["citations"] == []
    assert received[-1]["messages"] == [{"role": "user", "content": PLAIN}]


def test_openai_fields_and_unknown_fields_are_forwarded(
    client: openai.OpenAI, received: list[dict[str, Any]]
) -> None:
    tools: Any = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    client.chat.completions.create(
        model="fake-ok",
        messages=[{"role": "user", "content": TIP}],
        tools=tools,
        response_format=schema,  # type: ignore[arg-type]
        logprobs=True,
        top_logprobs=2,
        n=2,
        stop=["\n\n"],
        seed=7,
        max_tokens=11,
        max_completion_tokens=12,
        temperature=0.1,
        extra_body={"top_k": 5, "chat_template_kwargs": {"x": 1}},
    )
    sent = received[-1]
    for field, value in {
        "tools": tools, "response_format": schema, "logprobs": True, "top_logprobs": 2,
        "n": 2, "stop": ["\n\n"], "seed": 7, "max_tokens": 11, "max_completion_tokens": 12,
        "temperature": 0.1, "top_k": 5, "chat_template_kwargs": {"x": 1},
    }.items():  # fmt: skip
        assert sent[field] == value, field
    assert "<culture_knowledge>" not in sent["messages"][0]["content"]  # JSON output: inject


def test_models_lists_the_upstream_models(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["fake-ok"]


def test_bad_requests_are_400_with_the_offending_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="fake-ok",
            messages=[{"role": "wizard", "content": "hi"}],  # type: ignore[misc,list-item]
        )
    assert caught.value.body["param"] == "messages[0].role"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="fake-ok",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"culturesafe": {"mode": "loud"}},
        )
    assert caught.value.body["param"] == "culturesafe.mode"  # type: ignore[index]
