"""Fixtures for the gateway tests: real servers on loopback, shared per session.

* ``serve(app)`` runs any ASGI app under a real uvicorn server in a thread on a free
  127.0.0.1 port (the lifespan runs, as in production).
* ``retriever``: the real retriever over the starter knowledge base (embedder + FAISS).
* ``fake_upstream``: a small OpenAI-compatible server whose behaviour is chosen by the
  request's ``model`` (``fake-ok``, ``fake-slow``, ``fake-500``...). It fakes only the
  HTTP boundary, to inject the faults a real model server would rarely produce on cue.
* ``embedded_gateway``: the gateway on the real embedded SmolLM2 (started once).
* ``gateway(**settings)``: a ``TestClient`` on the real app in front of the fake upstream,
  with the given settings overridden.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from retrieval.protocols import Retriever

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

Gateway = Callable[..., AbstractContextManager[TestClient]]
Upstream = tuple[str, list[dict[str, Any]]]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yield ``http://127.0.0.1:PORT``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 180
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("uvicorn did not start (see the log above)")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


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

KNOWLEDGE_ANSWER = (
    "<culture_knowledge>In Japan tipping is not customary [1].</culture_knowledge>\n"
    "Thanks for asking! In Japan you do not need to tip."
)


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


def _content(model: str) -> str:
    return KNOWLEDGE_ANSWER if model == "fake-knowledge" else "Hello from the fake upstream."


def fake_upstream_app(received: list[dict[str, Any]]) -> FastAPI:
    """An OpenAI-compatible server; ``model`` picks the behaviour; bodies are recorded."""
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "fake-ok", "object": "model", "owned_by": "t"}]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
        body = await request.json()
        received.append(body)
        model = str(body.get("model"))
        if model == "fake-slow":
            await asyncio.sleep(3)
        if model == "fake-500":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if model == "fake-429":
            error = {"message": "slow down", "type": "rate_limit_error", "code": "rate_limited"}
            return JSONResponse({"error": error}, status_code=429, headers={"Retry-After": "7"})
        if model == "fake-400":
            error = {"message": "bad temperature", "type": "invalid_request_error"}
            return JSONResponse({"error": {**error, "param": "temperature"}}, status_code=400)
        if not body.get("stream"):
            return _completion(model, _content(model))

        async def events() -> AsyncIterator[str]:
            yield _chunk(model, {"role": "assistant", "content": ""})
            for char in _content(model):  # one character per chunk: splits every tag
                yield _chunk(model, {"content": char})
                if model == "fake-drop":
                    raise RuntimeError("the fake upstream drops the connection mid-stream")
                if model == "fake-trickle":
                    await asyncio.sleep(1)  # a slow stream the client will walk away from
            yield _chunk(model, {}, "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
                yield f"data: {json.dumps({'id': 'x', 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``(base_url ending in /v1, list of received request bodies)``."""
    received: list[dict[str, Any]] = []
    with serve(fake_upstream_app(received)) as url:
        yield f"{url}/v1", received


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
