"""The gateway in front of the real vLLM server, called exactly as a user would call vLLM.

Only ``base_url`` changes between these tests and ``test_vllm_direct.py``: the gateway must
pass vLLM's answers, streams, model list and structured output through, and add its
grounding details (``culturesafe``) on top.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

pytestmark = pytest.mark.vllm

MODEL = "smollm2"
TIP = "Is it rude to leave a tip for the waiter at a restaurant in Japan?"
PLAIN = "Say hello."
TIP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "country": {"type": "string", "enum": ["Japan", "China", "India"]},
        "tipping_expected": {"type": "boolean"},
    },
    "required": ["country", "tipping_expected"],
    "additionalProperties": False,
}


def test_models_are_the_upstream_models(gateway_client: openai.OpenAI) -> None:
    assert [model.id for model in gateway_client.models.list()] == [MODEL]


def test_chat_completion_through_the_gateway(gateway_client: openai.OpenAI) -> None:
    raw = gateway_client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": PLAIN}], max_tokens=8, temperature=0
    )
    completion = raw.parse()
    assert completion.model == MODEL
    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 8
    assert completion.to_dict()["culturesafe"]["applied"] is False
    assert raw.headers["X-CultureSafe-Grounded"] == "false"


def test_streaming_reassembles_and_ends_with_done(gateway_client: openai.OpenAI) -> None:
    with gateway_client.chat.completions.with_streaming_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": PLAIN}],
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        payloads = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert not [c for c in chunks if "error" in c]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text
    assert chunks[-1]["usage"]["completion_tokens"] <= 8


def test_json_schema_response_format_reaches_vllm(gateway_client: openai.OpenAI) -> None:
    completion = gateway_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"{TIP} Answer in JSON."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "tipping", "schema": TIP_SCHEMA, "strict": True},
        },
        max_tokens=40,
        temperature=0,
    )
    content = completion.choices[0].message.content
    assert content is not None
    # Only vLLM's grammar-constrained decoding makes a 135M model produce exactly this.
    jsonschema.validate(json.loads(content), TIP_SCHEMA)


def test_grounded_request_cites_the_knowledge_base(gateway_client: openai.OpenAI) -> None:
    raw = gateway_client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": TIP}],
        max_tokens=24,
        temperature=0,
        extra_body={"culturesafe": {"mode": "grounded"}},
    )
    completion = raw.parse()
    details = completion.to_dict()["culturesafe"]
    assert details["applied"] is True
    assert details["mode"] == "grounded"
    assert details["citations"][0]["id"] == "starter-jp-001"
    assert details["citations"][0]["location"] == "Japan"
    assert "<culture_knowledge>" not in (completion.choices[0].message.content or "")
    assert raw.headers["X-CultureSafe-Grounded"] == "true"


def test_prefill_technique_is_accepted_by_vllm(gateway_client: openai.OpenAI) -> None:
    """The prefill is sent with vLLM's ``continue_final_message`` flags; no fallback."""
    completion = gateway_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": TIP}],
        max_tokens=16,
        temperature=0,
        extra_body={"culturesafe": {"mode": "grounded", "technique": "prefill"}},
    )
    details = completion.to_dict()["culturesafe"]
    assert details["applied"] is True
    assert details["technique"] == "prefill"
    assert details["technique_fallback"] is None
    assert details["prefill"]
