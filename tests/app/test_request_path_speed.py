"""Request-path mechanisms: the embedder thread setting, the query cache, one encode per
request (real retriever over the starter knowledge base, real uvicorn)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import torch

from app.config import Settings
from app.grounding.service import GroundingService
from app.http.metrics import Metrics
from app.main import create_app
from retrieval.build import build_retriever
from retrieval.embedding_cache import CachedEmbedder
from retrieval.protocols import Retriever
from retrieval.retriever import HybridRetriever
from tests.app.conftest import serve, upstream_settings
from tests.retrieval.conftest import CountingEmbedder


def test_the_lifespan_applies_the_embedder_thread_setting(
    fake_upstream: tuple[str, list[object]], retriever: Retriever
) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        app = create_app(upstream_settings(fake_upstream[0], embedder_threads=1,
                                           embedder_backend="torch"),
                         retriever=retriever)
        with serve(app) as url:
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
            seen: list[int] = []  # what a new worker thread (where encodes run) gets
            worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
            worker.start()
            worker.join()
            assert seen == [1]
    finally:
        torch.set_num_threads(before)


def test_build_retriever_puts_the_query_cache_in_front_of_the_embedder(
    tmp_path: Path, retriever: Retriever
) -> None:
    assert isinstance(retriever, HybridRetriever)
    common = {"data_dir": None, "index_dir": tmp_path, "embedder_model": None,
              "threshold": 0.4, "embedder": retriever.embedder}
    cached = build_retriever(**common, query_cache_size=16)  # type: ignore[arg-type]
    assert isinstance(cached.embedder, CachedEmbedder)
    assert cached.embedder.inner is retriever.embedder and cached.embedder.maxsize == 16
    plain = build_retriever(**common, query_cache_size=0)  # type: ignore[arg-type]
    assert plain.embedder is retriever.embedder


async def test_a_multi_turn_request_embeds_once(retriever: Retriever) -> None:
    assert isinstance(retriever, HybridRetriever)
    original = retriever.embedder
    counting = CountingEmbedder(original)
    retriever.embedder = counting
    try:
        service = GroundingService(
            retriever, Settings(index_dir=Path("unused"), grounding_technique="instruct"),
            Metrics())
        messages = [{"role": "user", "content": "I am travelling to Japan next month."},
                    {"role": "assistant", "content": "Have a good trip!"},
                    {"role": "user", "content": "Should I tip the waiter there?"}]
        plan = await service.plan(messages, None)
        assert plan.applied
        assert len(counting.calls) == 1 and len(counting.calls[0]) == 1
        counting.calls.clear()
        await service.plan(messages[-1:], None)
        assert counting.calls == [["Should I tip the waiter there?"]]
    finally:
        retriever.embedder = original
