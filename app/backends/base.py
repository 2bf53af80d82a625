"""The seam between the gateway and a model server: the ``ChatModel`` protocol.

Both backends speak OpenAI's HTTP API (the embedded one is llama.cpp's server on
loopback), so one implementation, ``UpstreamChatModel``, serves both; the protocol lets
tests and future backends (e.g. an in-process engine) slot in without mocking internals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

JSON = dict[str, Any]


@runtime_checkable
class ChunkStream(Protocol):
    """An opened streaming completion: parsed chunks until ``[DONE]``; close it always."""

    def __aiter__(self) -> AsyncIterator[JSON]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ChatModel(Protocol):
    """An OpenAI-compatible chat model server."""

    @property
    def model_name(self) -> str | None:
        """The model name sent upstream when set (overrides the client's ``model``)."""
        ...

    async def chat(self, body: JSON) -> JSON:
        """A non-streaming completion: the upstream's JSON body."""
        ...

    async def open_stream(self, body: JSON) -> ChunkStream:
        """Start a streaming completion; errors before the first chunk raise here."""
        ...

    async def list_models(self) -> JSON:
        """The upstream's ``GET /models`` body."""
        ...

    async def check_ready(self) -> None:
        """Raise a ``GatewayError`` unless the upstream answers."""
        ...
