"""Fixtures for the gateway tests: real servers on loopback, shared per session.

* ``serve(app)`` runs any ASGI app under a real uvicorn server in a thread on a free
  127.0.0.1 port (the lifespan runs, as in production).
* ``retriever``: the real retriever over the starter knowledge base (embedder + FAISS).
* ``fake_upstream``: the fake OpenAI-compatible server of :mod:`tests.fakes.openai_server`,
  whose behaviour is chosen by the request's ``model`` (``slow``, ``status-500``...; any
  other name, e.g. ``fake-ok``, gets the echo). It fakes only the HTTP boundary, to inject
  the faults a real model server would rarely produce on cue.
* ``embedded_gateway``: the gateway on the real embedded SmolLM2 (started once).
* ``gateway(**settings)``: a ``TestClient`` on the real app in front of the fake upstream,
  with the given settings overridden.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from retrieval.protocols import Retriever
from tests.fakes import loopback
from tests.fakes.openai_server import FakeOpenAI

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

Gateway = Callable[..., AbstractContextManager[TestClient]]
Upstream = tuple[str, list[dict[str, Any]]]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yield ``http://127.0.0.1:PORT``."""
    with loopback.serve(app) as served:
        yield served.url


@pytest.fixture(scope="session")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    """The real retriever over the starter knowledge base (built once per session)."""
    from retrieval.build import build_retriever

    built: Retriever = build_retriever(
        data_dir=None,
        index_dir=tmp_path_factory.mktemp("index"),
        embedder_model=None,
        threshold=Settings().similarity_threshold,
    )
    return built


# --- the fake upstream ----------------------------------------------------------------

@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[Upstream]:
    """``(base_url ending in /v1, list of received request bodies)`` of the one fake
    upstream (:mod:`tests.fakes.openai_server`), streaming one character per delta so that
    every tag is split."""
    with FakeOpenAI(pieces="chars", models=("fake-ok",)) as fake:
        yield fake.base_url, fake.received


def upstream_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "backend": "upstream",
        "upstream_base_url": base_url,
        "upstream_model": None,
        "read_timeout_s": 1.0,
        "connect_timeout_s": 1.0,
        "upstream_retries": 1,
        "index_dir": Path("unused"),
        "grounding_technique": "instruct",  # these tests expect the prompt-only technique
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="session")
def fake_gateway(
    fake_upstream: tuple[str, list[dict[str, Any]]], retriever: Retriever
) -> Iterator[str]:
    """The gateway (real uvicorn) in front of the fake upstream: its base URL."""
    app = create_app(upstream_settings(fake_upstream[0]), retriever=retriever)
    with serve(app) as url:
        yield url


@pytest.fixture(scope="session")
def embedded_gateway(retriever: Retriever) -> Iterator[str]:
    """The gateway on the real embedded SmolLM2 model: its base URL."""
    settings = Settings(backend="embedded", embedded_parallel=2, index_dir=Path("unused"))
    with serve(create_app(settings, retriever=retriever)) as url:
        yield url


@pytest.fixture
def gateway(fake_upstream: Upstream, retriever: Retriever) -> Gateway:
    """``gateway(**settings)``: a TestClient on the real app (lifespan run), in front of
    the fake upstream."""

    @contextmanager
    def start(**overrides: Any) -> Iterator[TestClient]:
        settings = Settings(
            backend="upstream",
            upstream_base_url=fake_upstream[0],
            index_dir=Path("unused"),
            read_timeout_s=5.0,
            **overrides,
        )
        with TestClient(create_app(settings, retriever=retriever)) as client:
            yield client

    return start
