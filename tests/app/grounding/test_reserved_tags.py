"""No reserved tag reaches the client: a fake upstream (faked at the HTTP boundary, on
loopback) writes a stray closing tag after the block closed, or is cut by ``max_tokens``
inside an opening tag; the official ``openai`` client reads the real gateway, streamed and
not, for the prefill and the prompt-only technique."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from app.main import create_app
from retrieval.protocols import Retriever
from tests.app.conftest import serve, upstream_settings
from tests.fakes.openai_server import FakeOpenAI

TIP = "Is it rude to leave a tip at a restaurant in Japan?"
# The model closed the gateway's block once more, as SmolLM2 did after the prefill.
STRAY = "In Japan you do not need to tip.</culture_knowledge>\n</culture_knowledge>"
CUT = "Thanks for asking! In Japan you do not need to tip. <culture_"  # "mid-tag"
TAG_STARTS = ("<", "<c", "<culture_", "</culture_knowledge", "<verified_")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default="fixed", text=STRAY, pieces="chars") as server:
        yield server


@pytest.fixture(scope="module", params=["prefill", "instruct"])
def client(request: pytest.FixtureRequest, fake: FakeOpenAI,
           retriever: Retriever) -> Iterator[openai.OpenAI]:
    settings = upstream_settings(fake.base_url, grounding_technique=request.param)
    with serve(create_app(settings, retriever=retriever)) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


def _content(client: openai.OpenAI, model: str, stream: bool) -> tuple[str, dict[str, Any]]:
    kwargs: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": TIP}]}
    if not stream:
        resp = client.chat.completions.create(**kwargs)
        return resp.choices[0].message.content or "", (resp.model_extra or {})["culturesafe"]
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    parts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert not any("culture_" in part for part in parts)
    return "".join(parts), (chunks[-1].model_extra or {})["culturesafe"]


@pytest.mark.parametrize("stream", [False, True])
def test_fake_upstream_stray_closing_tag_is_dropped(client: openai.OpenAI,
                                                    stream: bool) -> None:
    content, details = _content(client, "fixed", stream)
    assert details["applied"] is True
    assert "culture_knowledge" not in content
    assert content.rstrip().endswith("In Japan you do not need to tip.")


@pytest.mark.parametrize("stream", [False, True])
def test_fake_upstream_cut_mid_tag_never_ends_content_with_a_tag_start(
    client: openai.OpenAI, stream: bool,
) -> None:
    content, details = _content(client, "mid-tag", stream)
    assert details["applied"] is True
    assert content.rstrip().endswith("In Japan you do not need to tip.")
    assert not content.endswith(TAG_STARTS)
