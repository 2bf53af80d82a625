"""A voice per intent, through the official ``openai`` client against the real gateway
(uvicorn on loopback, real retriever): a fake upstream on loopback shows what the gateway
sends and returns for each voice, streamed and not; the real embedded SmolLM2 shows the
voices and the repeat penalty end to end."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from app.grounding.voice import opening, technique_in_voice, template_for
from app.main import create_app
from retrieval.models import Passage
from retrieval.protocols import Retriever
from tests.app.conftest import serve, upstream_settings
from tests.fakes.openai_server import FakeOpenAI

QUESTION = "Is it rude to leave a tip at a restaurant in Japan?"
DISPARAGING = "Japanese waiters refusing tips is silly. Tell me why I should tip anyway."
QUESTION_OPENING = "Here is what verified sources say about this in Japan:"
DISPARAGING_OPENING = "I hear that this custom bothers you."
ADVICE = "Some practical, respectful advice:\n\n"  # a heading, not a slot for a claim
CONTINUATION = "So a smile and a thank-you are enough."
PASSAGES = (
    Passage(id="jp-1", location="Japan", score=0.8,
            description="Tipping is not customary in Japan. Staff may refuse a tip."),
    Passage(id="th-1", location="Thailand", score=0.5, description="The wai is a greeting."),
)


def test_each_voice_opens_on_complete_cited_facts_of_the_top_location() -> None:
    question = opening("cultural_question", PASSAGES)
    disparaging = opening("disparaging", PASSAGES)
    fact = "- Tipping is not customary in Japan. [1]\n\n"
    assert question == f"{QUESTION_OPENING}\n\n{fact}{ADVICE}"
    assert disparaging.startswith(DISPARAGING_OPENING)
    assert disparaging.endswith(fact + ADVICE)
    assert "wai" not in question + disparaging  # another location's description
    for text in (question, disparaging):
        assert "frustrat" not in text and "the people who keep it" not in text


def test_the_question_voice_has_its_own_templates() -> None:
    assert template_for("cultural_question", "technique_prefill") == "technique_prefill_question"
    assert template_for("cultural_question", "inject") == "inject"
    assert template_for("disparaging", "technique_prefill") == "technique_prefill"
    assert technique_in_voice("fewshot", "cultural_question")[0] == "instruct"
    assert technique_in_voice("fewshot", "disparaging") == ("fewshot", None)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default="fixed", text=CONTINUATION, pieces="chars") as server:
        yield server


@pytest.fixture(scope="module")
def client(fake: FakeOpenAI, retriever: Retriever) -> Iterator[openai.OpenAI]:
    settings = upstream_settings(fake.base_url, grounding_technique="prefill",
                                 upstream_grounded_sampling={"frequency_penalty": 0.3})
    with serve(create_app(settings, retriever=retriever)) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


def _ask(client: openai.OpenAI, text: str, *, stream: bool, intent: str | None = None,
         model: str = "fixed", **extra: Any) -> tuple[str, dict[str, Any]]:
    options = {"intent": intent} if intent else {}
    kwargs: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}],
                              "extra_body": {"culturesafe": options}, **extra}
    if not stream:
        resp = client.chat.completions.create(**kwargs)
        return resp.choices[0].message.content or "", (resp.model_extra or {})["culturesafe"]
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, (chunks[-1].model_extra or {})["culturesafe"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_cultural_question_gets_the_neutral_voice(
    client: openai.OpenAI, fake: FakeOpenAI, stream: bool,
) -> None:
    content, details = _ask(client, QUESTION, stream=stream, intent="cultural_question")
    assert content.startswith(f"{QUESTION_OPENING}\n\n- Tipping is not customary in Japan")
    # Every verified Japan description retrieved is a cited fact; the advice heading follows.
    assert re.search(rf"\[\d+\]\n\n{re.escape(ADVICE + CONTINUATION)}$", content)
    assert "frustrat" not in content and "bothers you" not in content
    assert (details["intent"], details["technique"]) == ("cultural_question", "prefill")
    system = fake.received[-1]["messages"][0]["content"]
    assert system.startswith("You answer questions about cultural customs")


@pytest.mark.parametrize("stream", [False, True])
def test_a_disparaging_request_gets_the_voice_that_acknowledges_without_adopting(
    client: openai.OpenAI, fake: FakeOpenAI, stream: bool,
) -> None:
    content, details = _ask(client, DISPARAGING, stream=stream, intent="disparaging")
    assert content.startswith(DISPARAGING_OPENING) and content.endswith(CONTINUATION)
    assert "silly" not in content  # the user's word is not taken over
    assert details["intent"] == "disparaging" and details["prefill"] in content
    assert "respectful advice" in fake.received[-1]["messages"][0]["content"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("text", "intent", "start"), [
    (QUESTION, "cultural_question", QUESTION_OPENING),
    (DISPARAGING, "disparaging", DISPARAGING_OPENING),
])
def test_the_intent_gate_picks_the_voice_when_the_client_says_nothing(
    client: openai.OpenAI, text: str, intent: str, start: str, stream: bool,
) -> None:
    content, details = _ask(client, text, stream=stream)
    assert details["intent"] == intent and 0.5 < details["intent_score"] <= 1
    assert content.startswith(start)


def test_without_the_gate_the_voice_stays_the_disparaging_one(
    fake: FakeOpenAI, retriever: Retriever,
) -> None:
    settings = upstream_settings(fake.base_url, grounding_technique="prefill",
                                 intent_gate=False)
    with serve(create_app(settings, retriever=retriever)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        content, details = _ask(client, QUESTION, stream=False)
    assert content.startswith(DISPARAGING_OPENING) and details["intent"] is None


def test_the_gateway_adds_a_penalty_only_when_the_client_chose_none(
    client: openai.OpenAI, fake: FakeOpenAI,
) -> None:
    _, details = _ask(client, QUESTION, stream=False)
    assert fake.received[-1]["frequency_penalty"] == 0.3
    assert details["sampling"] == {"frequency_penalty": 0.3}
    _, details = _ask(client, QUESTION, stream=False, presence_penalty=0.0)
    assert "frequency_penalty" not in fake.received[-1] and details["sampling"] is None


@pytest.mark.parametrize("stream", [False, True])
def test_a_not_cultural_intent_is_forwarded_untouched(
    client: openai.OpenAI, fake: FakeOpenAI, stream: bool,
) -> None:
    content, details = _ask(client, QUESTION, stream=stream, intent="not_cultural")
    assert content == CONTINUATION and details["applied"] is False
    assert fake.received[-1]["messages"] == [{"role": "user", "content": QUESTION}]
    assert "frequency_penalty" not in fake.received[-1]


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("intent", "text", "start"), [
    ("cultural_question", QUESTION, QUESTION_OPENING),
    ("disparaging", DISPARAGING, DISPARAGING_OPENING),
])
def test_the_embedded_model_speaks_in_the_voice_with_the_repeat_penalty(
    embedded_gateway: str, intent: str, text: str, start: str, stream: bool,
) -> None:
    client = openai.OpenAI(base_url=f"{embedded_gateway}/v1", api_key="x", max_retries=0)
    content, details = _ask(client, text, stream=stream, intent=intent, max_tokens=24,
                            temperature=0, model="smollm2")
    assert content.startswith(start) and len(content) > len(details["prefill"])
    assert details["intent"] == intent
    assert details["sampling"] == {"repeat_penalty": 1.15, "repeat_last_n": 256}
    assert "culture_knowledge" not in content and "frustrat" not in content
