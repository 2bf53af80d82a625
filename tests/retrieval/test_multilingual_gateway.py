"""A non-English request grounded end to end: the official ``openai`` client, the real
gateway (uvicorn on loopback) with the language-routed retriever over the starter
knowledge base, and the fake OpenAI-compatible upstream (faked only at the HTTP boundary,
to see what the gateway sends it)."""

from __future__ import annotations

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

UKRAINIAN_FLOWERS = "Чи можна дарувати парну кількість квітів на день народження в Києві?"
THAI_HEAD = "ที่เชียงใหม่ ลูบหัวเด็กถือว่าเสียมารยาทไหม"


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> RoutedRetriever:
    return build_routed_retriever(
        data_dir=None,
        index_dir=tmp_path_factory.mktemp("routed") / "index",
        embedder_model=None,
        threshold=Settings().similarity_threshold,
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(models=("fake-ok",)) as fake:
        yield fake


@pytest.fixture(scope="module")
def client(routed: RoutedRetriever, upstream: FakeOpenAI) -> Iterator[openai.OpenAI]:
    settings = Settings(backend="upstream", upstream_base_url=upstream.base_url,
                        upstream_model=None, index_dir=Path("unused"),
                        grounding_technique="instruct")
    with loopback.serve(create_app(settings, retriever=routed)) as served:
        yield openai.OpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0)


@pytest.mark.parametrize(
    ("question", "expected"),
    [(UKRAINIAN_FLOWERS, "starter-ua-002"), (THAI_HEAD, "starter-th-001")],
)
def test_a_non_english_request_is_grounded_with_its_description(
    client: openai.OpenAI, upstream: FakeOpenAI, question: str, expected: str
) -> None:
    upstream.received.clear()
    resp = client.chat.completions.create(
        model="fake-ok", messages=[{"role": "user", "content": question}]
    )
    details: dict[str, Any] = (resp.model_extra or {})["culturesafe"]
    assert details["applied"] is True
    assert expected in [c["id"] for c in details["citations"]]
    description = load_knowledge_base(None).by_id(expected).description
    sent = upstream.received[-1]["messages"]
    assert sent[0]["role"] == "system" and description[:60] in sent[0]["content"]
    assert sent[-1] == {"role": "user", "content": question}


def test_the_english_path_alone_would_not_ground_it(routed: RoutedRetriever) -> None:
    assert routed.english.search(UKRAINIAN_FLOWERS, 3) == []  # the 0.30 case
    assert routed.search(UKRAINIAN_FLOWERS, 3)[0].id == "starter-ua-002"
