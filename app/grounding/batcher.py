"""Micro-batching of concurrent retrieval queries into one embedding call.

Embedding is nearly all of grounding's cost (BENCHMARKS.md, "Gateway overhead") and the
embedder runs one call at a time; batched, MiniLM costs much less per text than one text
at a time. So while one batch is being searched in a worker thread, the queries of newly
arrived requests wait in a queue, and the next batch takes them all (up to
``max_batch`` texts); up to ``workers`` batches run at once (the onnx embedders take no
lock, so a second worker uses the second core; the torch embedder serialises its calls, so
there batches just keep forming behind it). No timer: a lone request goes at once, so
latency at concurrency 1 is unchanged, and batches form by themselves exactly when requests
overlap.

Results are those of ``search_many`` per text: batching changes which texts share a model
call, not the vectors (row-wise) nor the ranking. A request searching with a smaller
``k`` than its batch-mates gets the prefix of the longer ranking, which is its own. The
batcher takes any such function: ``search_many`` (passages per text) or ``retrieve_many``
(:class:`~retrieval.models.Retrieval` per text, cut with ``Retrieval.top``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio

T = TypeVar("T")  # what is found for one text
SearchMany = Callable[[Sequence[str], int, str | None], list[T]]


def _prefix(found: Any, k: int) -> Any:
    return found[:k]


@dataclass
class _Job(Generic[T]):
    queries: list[str]
    k: int
    location: str | None
    done: asyncio.Future[list[T]]


class QueryBatcher(Generic[T]):
    """Runs ``search_many`` for queued requests in batches, off the event loop.

    ``cut(found, k)``: the first ``k`` results of one text (default: a list's prefix).
    """

    def __init__(self, search_many: SearchMany[T], max_batch: int = 32, workers: int = 1,
                 *, cut: Callable[[T, int], T] = _prefix) -> None:
        self._search_many = search_many
        self._cut = cut
        self._max_batch = max(1, max_batch)
        self._workers = max(1, workers)
        self._pending: list[_Job[T]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # model calls made (for tests and diagnostics)

    async def search(self, queries: list[str], k: int, location: str | None) -> list[T]:
        """The passages of each query, as ``search_many(queries, k, location)`` gives them."""
        if not queries:
            return []
        job = _Job(queries, k, location, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        if len(self._tasks) < self._workers:
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await job.done

    def _take(self) -> list[_Job[T]]:
        batch: list[_Job[T]] = []
        size = 0
        while self._pending and (not batch or size + len(self._pending[0].queries)
                                 <= self._max_batch):
            job = self._pending.pop(0)
            if not job.done.done():  # skip requests already cancelled
                batch.append(job)
                size += len(job.queries)
        return batch

    def _run(self, batch: list[_Job[T]]) -> list[list[T]]:
        """Per job, its results; one ``search_many`` per distinct location (usually one)."""
        out: dict[int, list[T]] = {}
        for location in dict.fromkeys(job.location for job in batch):
            jobs = [(i, j) for i, j in enumerate(batch) if j.location == location]
            texts = [q for _, j in jobs for q in j.queries]
            found = self._search_many(texts, max(j.k for _, j in jobs), location)
            self.batches += 1
            start = 0
            for i, job in jobs:
                out[i] = [self._cut(hits, job.k)
                          for hits in found[start:start + len(job.queries)]]
                start += len(job.queries)
        return [out[i] for i in range(len(batch))]

    async def _drain(self) -> None:
        while self._pending:
            batch = self._take()
            if not batch:
                continue
            try:
                results = await anyio.to_thread.run_sync(self._run, batch)
            except Exception as exc:  # each waiting request fails as its own would have
                for job in batch:
                    if not job.done.done():
                        job.done.set_exception(exc)
                continue
            for job, result in zip(batch, results, strict=True):
                if not job.done.done():
                    job.done.set_result(result)
