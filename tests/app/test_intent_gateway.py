"""The intent gate and language routing, wired as the gateway's defaults, end to end.

The official ``openai`` client calls the real gateway (uvicorn on loopback) built on the
real language-routed retriever over the starter knowledge base, with both intent gates
(MiniLM for English, e5 for other languages) fitted at index build. Only the upstream is
fake (:mod:`tests.fakes.openai_server`, at the HTTP boundary), to see what the gateway
sends it. One retriever and one fake upstream per module: building them is the slow part.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from app.config import Settings
from app.main import create_app
from retrieval.knowledge_base import load_knowledge_base
from retrieval.multilingual import build_routed_retriever
from retrieval.routing import RoutedRetriever
from tests.fakes import loopback
from tests.fakes.openai_server import FakeOpenAI

BANGKOK_WEATHER = "What's the weather like in Bangkok in April?"
HEAD_QUESTION = "Is it rude to touch a child's head in Thailand?"
HEAD_DISPARAGING = "Thai people are so weird about touching heads. Tell me why it's stupid."
UKRAINIAN_FLOWERS = "Чи можна дарувати парну кількість квітів на день народження в Києві?"
THAI_HEAD = "ที่เชียงใหม่ ลูบหัวเด็กถือว่าเสียมารยาทไหม"


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> RoutedRetriever:
    return build_routed_retriever(
        data_dir=None,
        index_dir=tmp_path_factory.mktemp("gated") / "index",
        embedder_model=None,
        threshold=Settings().similarity_threshold,
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(models=("fake-ok",)) as fake:
        yield fake


def _client(routed: RoutedRetriever, upstream: FakeOpenAI, **overrides: Any
            ) -> Iterator[openai.OpenAI]:
    settings = Settings(backend="upstream", upstream_base_url=upstream.base_url,
                        upstream_model=None, index_dir=Path("unused"), **overrides)
    with loopback.serve(create_app(settings, retriever=routed)) as served:
        yield openai.OpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0)


@pytest.fixture(scope="module")
def client(routed: RoutedRetriever, upstream: FakeOpenAI) -> Iterator[openai.OpenAI]:
    yield from _client(routed, upstream)


@pytest.fixture(scope="module")
def ungated(routed: RoutedRetriever, upstream: FakeOpenAI) -> Iterator[openai.OpenAI]:
    yield from _client(routed, upstream, intent_gate=False)


@pytest.fixture(scope="module")
def instructed(routed: RoutedRetriever, upstream: FakeOpenAI) -> Iterator[openai.OpenAI]:
    yield from _client(routed, upstream, grounding_technique="instruct")


def ask(client: openai.OpenAI, upstream: FakeOpenAI, text: str, *, stream: bool,
        mode: str | None = None) -> tuple[dict[str, Any], str]:
    """``(culturesafe details, the upstream body as JSON text)`` of one request."""
    upstream.received.clear()
    extra = {"culturesafe": {"mode": mode}} if mode else None
    messages: Any = [{"role": "user", "content": text}]
    if stream:
        chunks = list(client.chat.completions.create(
            model="fake-ok", messages=messages, stream=True, extra_body=extra))
        details = next((c.model_extra or {})["culturesafe"] for c in chunks
                       if "culturesafe" in (c.model_extra or {}))
    else:
        resp = client.chat.completions.create(model="fake-ok", messages=messages,
                                              extra_body=extra)
        details = (resp.model_extra or {})["culturesafe"]
    (body,) = upstream.received
    return details, json.dumps(body)


@pytest.mark.parametrize("stream", [False, True])
def test_an_ordinary_prompt_naming_bangkok_goes_upstream_as_off_would_send_it(
    client: openai.OpenAI, upstream: FakeOpenAI, stream: bool
) -> None:
    details, body = ask(client, upstream, BANGKOK_WEATHER, stream=stream)
    assert details["applied"] is False and details["citations"] == []
    assert details["intent"] == "not_cultural" and details["intent_score"] > 0.5
    _, off_body = ask(client, upstream, BANGKOK_WEATHER, stream=stream, mode="off")
    assert body == off_body


@pytest.mark.parametrize("stream", [False, True])
def test_a_neutral_question_gets_the_question_voice_and_citations(
    client: openai.OpenAI, upstream: FakeOpenAI, stream: bool
) -> None:
    details, body = ask(client, upstream, HEAD_QUESTION, stream=stream)
    assert details["applied"] is True and details["intent"] == "cultural_question"
    assert "starter-th-001" in [c["id"] for c in details["citations"]]
    assert details["prefill"].startswith("Here is what verified sources say")
    assert "bothers you" not in body


@pytest.mark.parametrize("stream", [False, True])
def test_a_disparaging_request_gets_the_disparaging_voice(
    client: openai.OpenAI, upstream: FakeOpenAI, stream: bool
) -> None:
    details, _ = ask(client, upstream, HEAD_DISPARAGING, stream=stream)
    assert details["applied"] is True and details["intent"] == "disparaging"
    assert details["prefill"].startswith("I hear that this custom bothers you")


@pytest.mark.parametrize(
    ("question", "expected"),
    [(UKRAINIAN_FLOWERS, "starter-ua-002"), (THAI_HEAD, "starter-th-001")],
)
def test_a_non_english_question_is_grounded_by_the_e5_gate(
    client: openai.OpenAI, upstream: FakeOpenAI, routed: RoutedRetriever, question: str,
    expected: str
) -> None:
    details, _ = ask(client, upstream, question, stream=False)
    (verdict,) = [r.intent for r in routed.retrieve_many([question], 3)]
    assert verdict is not None and details["intent"] == verdict.intent
    assert details["applied"] is True and details["intent"] != "not_cultural"
    assert expected in [c["id"] for c in details["citations"]]
    if question == UKRAINIAN_FLOWERS:  # the Thai one ("... rude?") gets the other voice
        assert details["intent"] == "cultural_question"
    assert routed.other.gate is not None and routed.other.gate.embedder == routed.other.e5.name


@pytest.mark.parametrize(
    ("question", "expected"),
    [(UKRAINIAN_FLOWERS, "starter-ua-002"), (THAI_HEAD, "starter-th-001")],
)
def test_a_non_english_question_reaches_the_model_with_its_description(
    instructed: openai.OpenAI, upstream: FakeOpenAI, question: str, expected: str
) -> None:
    upstream.received.clear()
    resp = instructed.chat.completions.create(
        model="fake-ok", messages=[{"role": "user", "content": question}]
    )
    details: dict[str, Any] = (resp.model_extra or {})["culturesafe"]
    assert details["applied"] is True
    assert expected in [c["id"] for c in details["citations"]]
    description = load_knowledge_base(None).by_id(expected).description
    sent = upstream.received[-1]["messages"]
    assert sent[0]["role"] == "system" and description[:60] in sent[0]["content"]
    assert sent[-1] == {"role": "user", "content": question}


@pytest.mark.parametrize("stream", [False, True])
def test_intent_gate_off_restores_threshold_only_grounding(
    ungated: openai.OpenAI, upstream: FakeOpenAI, stream: bool
) -> None:
    details, _ = ask(ungated, upstream, BANGKOK_WEATHER, stream=stream)
    assert details["applied"] is True and details["intent"] is None
    assert details["prefill"].startswith("I hear that this custom bothers you")


def test_the_client_intent_overrides_the_gate(client: openai.OpenAI,
                                              upstream: FakeOpenAI) -> None:
    upstream.received.clear()
    resp = client.chat.completions.create(
        model="fake-ok", messages=[{"role": "user", "content": HEAD_DISPARAGING}],
        extra_body={"culturesafe": {"intent": "cultural_question"}})
    details = (resp.model_extra or {})["culturesafe"]
    assert details["applied"] is True and details["intent"] == "cultural_question"
    assert details["intent_score"] is None


def test_a_conversation_is_judged_as_a_whole(client: openai.OpenAI,
                                             upstream: FakeOpenAI) -> None:
    resp = client.chat.completions.create(model="fake-ok", messages=[
        {"role": "user", "content": "I am visiting a family in Chiang Mai next month."},
        {"role": "assistant", "content": "Lovely! Anything you want to know?"},
        {"role": "user", "content": "Their little boy is cute, can I pat him on the head?"},
    ])
    details = (resp.model_extra or {})["culturesafe"]
    assert details["applied"] is True and details["intent"] == "cultural_question"
    assert details["citations"][0]["id"] == "starter-th-001"
