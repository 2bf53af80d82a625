"""Grounded techniques: the reply read back (whole and streamed), non-cultural requests
untouched, and the real embedded llama.cpp server continuing a prefill and following the
``{knowledge, answer}`` schema. The fallback test fakes only the HTTP boundary (an upstream
that refuses the prefill flags)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from app.config import GroundingTechnique, Settings
from app.grounding.service import GroundingService
from app.grounding.techniques.output import TechniqueStreamFilter, technique_text
from app.grounding.techniques.prompting import VLLM_CONTINUE, build_technique, exemplars
from app.http.metrics import Metrics
from app.main import create_app
from app.protocol import GroundingOptions
from retrieval.models import Passage
from retrieval.protocols import Retriever
from tests.app.conftest import serve, upstream_settings
from tests.fakes.openai_server import FakeOpenAI

TECHNIQUES: tuple[GroundingTechnique, ...] = get_args(GroundingTechnique)
PASSAGE = Passage(
    id="japan:1",
    location="Japan",
    score=0.8,
    description="In Japan, tipping is not customary. Staff may refuse a tip.",
)
CULTURAL = "Japanese waiters refusing tips is silly. Tell me why I should tip anyway."
ORDINARY = "What is the derivative of x squared?"


def _plan(technique: GroundingTechnique) -> Any:
    def with_template(name: str) -> list[dict[str, Any]]:
        return [{"role": "system", "content": name}, {"role": "user", "content": CULTURAL}]

    return build_technique(technique, (PASSAGE,), with_template)


def _streamed(technique: GroundingTechnique, deltas: list[str]) -> str:
    technique_filter = TechniqueStreamFilter(_plan(technique))
    return "".join(technique_filter.feed(d) for d in deltas) + technique_filter.finish()


def test_prefill_opening_ends_on_a_complete_verified_fact() -> None:
    # An open "- In Japan," slot was filled with the user's claim; complete, cited facts
    # and an advice heading leave nothing the user's words fit (prompts/prefill_*.txt).
    opening = _plan("prefill").opening or ""
    assert opening.endswith("\n- In Japan, tipping is not customary. [1]\n\n"
                            "Some practical, respectful advice:\n\n")


@pytest.mark.parametrize("echoed", [True, False])
def test_prefill_text_is_restored_whether_or_not_the_upstream_echoes_it(echoed: bool) -> None:
    plan = _plan("prefill")
    assert plan.prefill.endswith(plan.opening) and "tipping is not customary" in plan.opening
    assert plan.extra_body == VLLM_CONTINUE
    assert plan.messages[-1] == {"role": "assistant", "content": plan.prefill}
    reply = (plan.prefill if echoed else "") + " So a smile and thanks are enough."
    whole = technique_text(plan, reply)
    assert whole == plan.prefill + " So a smile and thanks are enough."
    chars = list(reply)  # one character per delta, like a slow stream
    assert _streamed("prefill", chars) == whole


def test_two_pass_puts_the_statement_in_the_block() -> None:
    plan = _plan("two-pass")
    assert plan.statement == f"[1] {PASSAGE.description}"
    text = technique_text(plan, "Answer.")
    assert text.startswith("<culture_knowledge>") and text.endswith("Answer.")
    assert _streamed("two-pass", ["Ans", "wer."]) == text


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        (
            '{"knowledge": "Tips are not customary [1].", "answer": "Just say thanks."}',
            "Just say thanks.",
        ),
        ('{"knowledge": "Tips are not customary [1].", "answer": "Just say th', "Just say th"),
    ],
    ids=["whole", "cut-by-max-tokens"],
)
def test_structured_reply_becomes_block_plus_answer(reply: str, answer: str) -> None:
    plan = _plan("structured")
    assert plan.extra_body["response_format"]["type"] == "json_schema"
    expected = f"<culture_knowledge>\nTips are not customary [1].\n</culture_knowledge>\n\n{answer}"
    assert technique_text(plan, reply) == expected
    assert _streamed("structured", list(reply)) == expected
    assert technique_text(plan, "not json") == "not json"


def test_fewshot_exemplars_precede_the_conversation() -> None:
    plan = _plan("fewshot")
    pairs = exemplars()
    assert len(pairs) >= 3
    assert plan.messages[0]["role"] == "system"
    assert plan.messages[1] == {"role": "user", "content": pairs[0][0]}
    assert plan.messages[-1] == {"role": "user", "content": CULTURAL}
    assert _plan("instruct") is None


@pytest.mark.parametrize("technique", TECHNIQUES)
async def test_non_cultural_requests_stay_untouched(
    technique: GroundingTechnique, retriever: Retriever
) -> None:
    service = GroundingService(retriever, Settings(index_dir=Path("unused")), Metrics())
    messages = [{"role": "user", "content": ORDINARY}]
    plan = await service.plan(messages, GroundingOptions(mode="grounded", technique=technique))
    assert not plan.applied and plan.technique is None and plan.messages == messages
    assert plan.details().technique is None


def test_refused_prefill_falls_back_to_prompt_only_fake_http_upstream(
    retriever: Retriever,
) -> None:
    """A fake upstream (HTTP boundary) that rejects vLLM's continuation flags with 400."""
    answer = "<culture_knowledge>k</culture_knowledge>Hi"
    with (
        FakeOpenAI(default="fixed", text=answer, unsupported=("continue_final_message",)) as up,
        serve(create_app(upstream_settings(up.base_url), retriever=retriever)) as gateway,
    ):
        body = {
            "messages": [{"role": "user", "content": CULTURAL}],
            "culturesafe": {"mode": "grounded", "technique": "prefill"},
        }
        data = httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=30).json()
    received = up.received
    assert len(received) == 2 and received[1]["messages"][-1]["role"] == "user"
    details = data["culturesafe"]
    assert details["applied"] and details["technique"] == "instruct"
    assert details["requested_technique"] == "prefill"
    assert "HTTP 400" in details["technique_fallback"]
    assert data["choices"][0]["message"]["content"] == "Hi"


def _ask(gateway: str, technique: str, *, stream: bool = False, tokens: int = 24) -> Any:
    body = {
        "messages": [{"role": "user", "content": CULTURAL}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": stream,
        "culturesafe": {"mode": "grounded", "technique": technique},
    }
    if not stream:
        return httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=600).json()
    frames = []
    with httpx.stream("POST", f"{gateway}/v1/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                frames.append(json.loads(line[6:]))
    return frames


@pytest.mark.slow
def test_embedded_llama_continues_the_prefill(embedded_gateway: str) -> None:
    data = _ask(embedded_gateway, "prefill")
    details = data["culturesafe"]
    content = data["choices"][0]["message"]["content"]
    assert details["technique"] == "prefill" and details["technique_fallback"] is None
    assert content.startswith(details["prefill"])  # the opening is part of the answer
    assert len(content) > len(details["prefill"])  # and the model continued it
    assert "<culture_knowledge>" not in content and details["knowledge"].startswith("[1]")
    frames = _ask(embedded_gateway, "prefill", stream=True)
    streamed = "".join(
        c["delta"].get("content") or "" for f in frames for c in f.get("choices", [])
    )
    # llama.cpp is not bit-for-bit deterministic between a cold and a cached prompt, so the
    # continuations may part ways after a while; the stream must still open with the same
    # prefill, continue it, and never show the knowledge block.
    assert streamed.startswith(details["prefill"]) and len(streamed) > len(details["prefill"])
    assert "<culture_knowledge>" not in streamed and "</culture_knowledge>" not in streamed


@pytest.mark.slow
def test_embedded_llama_follows_the_structured_schema(embedded_gateway: str) -> None:
    data = _ask(embedded_gateway, "structured", tokens=160)
    details = data["culturesafe"]
    content = data["choices"][0]["message"]["content"]
    assert details["technique"] == "structured"
    assert details["knowledge"] and content  # the schema forced both parts
    assert not content.lstrip().startswith("{")
