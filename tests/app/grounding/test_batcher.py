"""Micro-batching of concurrent retrieval queries (real retriever, starter knowledge base)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from app.grounding.batcher import QueryBatcher
from retrieval.models import Passage
from retrieval.protocols import Retriever
from retrieval.retriever import HybridRetriever

QUESTIONS = [
    "Is it rude to leave a tip for the waiter at a restaurant in Japan?",
    "Should I bring a gift when visiting a family in China?",
    "How do people greet each other in India?",
    "Write a Python function that reverses a linked list.",
    "Is it fine to point with my feet in Thailand?",
    "What time do people eat dinner in Spain?",
]


def _ids(found: list[list[Passage]]) -> list[list[tuple[str, float]]]:
    return [[(p.id, round(p.score, 5)) for p in hits] for hits in found]


async def test_concurrent_requests_share_a_model_call_with_unchanged_results(
    retriever: Retriever,
) -> None:
    assert isinstance(retriever, HybridRetriever)
    batcher = QueryBatcher(retriever.search_many, max_batch=32)
    jobs = [([q], 1 + i % 3, None) for i, q in enumerate(QUESTIONS)]
    jobs.append(([QUESTIONS[0], QUESTIONS[1]], 3, None))  # a two-query (multi-turn) request
    got = await asyncio.gather(*(batcher.search(*job) for job in jobs))
    for (queries, k, location), found in zip(jobs, got, strict=True):
        assert _ids(found) == _ids([retriever.search(q, k, location) for q in queries])
    assert batcher.batches < len(jobs)


async def test_locations_and_batch_size_are_respected(retriever: Retriever) -> None:
    assert isinstance(retriever, HybridRetriever)
    batcher = QueryBatcher(retriever.search_many, max_batch=2)
    jobs = [([q], 3, "Japan" if i % 2 else None) for i, q in enumerate(QUESTIONS)]
    got = await asyncio.gather(*(batcher.search(*job) for job in jobs))
    for (queries, k, location), found in zip(jobs, got, strict=True):
        assert _ids(found) == _ids([retriever.search(q, k, location) for q in queries])
        assert all(p.location == "Japan" for p in found[0]) if location else True
    assert await batcher.search([], 3, None) == []


async def test_a_failing_search_fails_every_request_of_its_batch() -> None:
    def broken(queries: Sequence[str], k: int, location: str | None) -> list[list[Passage]]:
        raise RuntimeError("index unreadable")

    batcher = QueryBatcher(broken)
    got = await asyncio.gather(*(batcher.search([q], 3, None) for q in QUESTIONS[:3]),
                               return_exceptions=True)
    assert all(isinstance(e, RuntimeError) for e in got)
    with pytest.raises(RuntimeError, match="unreadable"):
        await batcher.search([QUESTIONS[0]], 3, None)


@pytest.mark.parametrize("workers", [1, 2])
async def test_up_to_workers_batches_run_at_once(workers: int) -> None:
    # Each search waits (up to 1 s) for a second one to run beside it: with two workers
    # both batches meet; with one, the first waits alone and the two run one after the other.
    barrier = threading.Barrier(2, timeout=1)
    met: list[bool] = []

    def search_many(queries: Sequence[str], k: int, location: str | None) -> (
        list[list[Passage]]
    ):
        try:
            barrier.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            met.append(False)
            barrier.reset()
        return [[] for _ in queries]

    batcher = QueryBatcher(search_many, max_batch=1, workers=workers)
    got = await asyncio.gather(*(batcher.search([q], 3, None) for q in QUESTIONS[:2]))
    assert got == [[[]], [[]]]
    assert met == ([True, True] if workers == 2 else [False, False])
