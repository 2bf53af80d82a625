"""Deprecated: the fake /v1/embeddings is :class:`tests.fakes.openai_server.FakeOpenAI`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from retrieval.protocols import Embedder
from tests.fakes.openai_server import FakeOpenAI


class FakeEmbeddings(FakeOpenAI):
    def __init__(self, embedder: Embedder, delay_s: float = 2.0) -> None:
        super().__init__(embedder=embedder, delay_s=delay_s)

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def fail_with(self) -> int | None:
        return None if self._failing is None else self._failing[0]

    @fail_with.setter
    def fail_with(self, status: int | None) -> None:
        self.fail(status)

    def _behaviour(self, model: str) -> str:
        return "malformed-json" if model == "malformed" else super()._behaviour(model)


@contextmanager
def serve_fake_embeddings(embedder: Embedder, delay_s: float = 2.0) -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings(embedder, delay_s) as fake:
        yield fake
