"""``Connection``: one HTTP/1.1 keep-alive client connection, as an asyncio protocol.

The response is parsed by ``httptools`` (the C parser uvicorn uses; it comes with
``uvicorn[standard]``) as bytes arrive; the reader waits on one future per parser event.
A server that closes the connection is seen at once (``eof_received``), so an idle
connection needs no readability poll before reuse. Errors are httpx's exceptions, so the
transport above can raise them as they are (see :mod:`eval.http_transport`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools
import httpx

PAUSE_AT = 256 * 1024  # bytes of unread body before the socket stops being read


class Connection(asyncio.Protocol):
    """One keep-alive connection and the response being read on it (httptools callbacks)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self.begin()

    def begin(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.in_use = True  # a request is on this connection until ``release``

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.in_use:  # bytes nobody asked for (an idle-timeout 408...): unusable
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"Malformed HTTP response: {exc}"))
            self.close()
        if self.buffered > PAUSE_AT and self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.closed = True
        if self.headers_done and not self.complete and self._close_delimited():
            self.on_message_complete()
        else:
            self._fail(httpx.RemoteProtocolError("Server disconnected mid-response."))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(httpx.ReadError(f"Connection lost: {exc}" if exc else "Connection lost."))

    # -- httptools callbacks
    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.body.append(bytes(body))
        self.buffered += len(body)
        self._wake()

    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive() and not self.closed
        self.complete = True
        self._wake()

    # -- used by the transport
    def _close_delimited(self) -> bool:
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _fail(self, error: Exception) -> None:
        if self.in_use and not self.complete and self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> bytes:
        chunk = self.body.popleft()
        self.buffered -= len(chunk)
        if self.buffered <= PAUSE_AT // 2 and self.transport is not None and not self.closed:
            self.transport.resume_reading()
        return chunk

    async def wait(self, timeout: float | None) -> None:
        """Until the next parser event; ``httpx.ReadTimeout`` after ``timeout`` seconds."""
        if self.error is not None:
            raise self.error
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("Timed out waiting for the server."))
