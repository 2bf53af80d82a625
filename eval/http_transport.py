"""``PooledHTTP11Transport``: a lean HTTP/1.1 transport for httpx with an O(1) keep-alive pool.

httpx's default transport (httpcore) rescans every pooled connection twice per request and
asks each idle socket whether it is readable (a ``poll`` per connection), so its cost per
request grows with the pool: py-spy put it at about half of the harness's event loop and
a third of the gateway's pass-through CPU. This transport keeps idle connections per
origin in a LIFO list, learns that a server closed one from the event loop
(``eof_received``) instead of polling, writes each request in one ``send``, and parses
responses in C (:class:`eval.http_connection.Connection`). The caller (the official
``openai`` client, or the gateway's ``httpx.AsyncClient``) is unchanged: this only
replaces the socket layer under httpx.

Plain ``http://`` only (loopback model servers, a judge, the gateway's upstream); other
schemes and ``HEAD`` go to httpx's own transport. Errors are httpx's, with httpcore's
meanings: ``ConnectError``/``ConnectTimeout`` (nothing was sent, safe to retry),
``ReadTimeout``, ``RemoteProtocolError``. Callers bound their own concurrency (the
gateway's semaphore, an endpoint's), so the pool does not queue.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import httpx

from eval.http_connection import Connection

_MAX_IDLE_PER_ORIGIN = 256


def lean_transport_applies(base_url: str) -> bool:
    """Whether requests to ``base_url`` can use this transport: ``http://`` with no proxy
    from the environment (httpx ignores environment proxies once given a transport)."""
    url = httpx.URL(base_url)
    if url.scheme != "http":
        return False
    return "http" not in urllib.request.getproxies() or bool(urllib.request.proxy_bypass(url.host))


class _ResponseBody(httpx.AsyncByteStream):
    """The body as it arrives; the connection goes back to the pool once fully read."""

    def __init__(self, pool: PooledHTTP11Transport, origin: tuple[str, int],
                 conn: Connection, timeout: float | None) -> None:
        self._pool, self._origin, self._conn, self._timeout = pool, origin, conn, timeout
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        try:
            while True:
                while conn.body:
                    yield conn.take()
                if conn.complete:
                    break
                await conn.wait(self._timeout)
        except BaseException:
            await self.aclose()
            raise
        await self.aclose()

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            self._pool.release(self._origin, self._conn)


class PooledHTTP11Transport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport: HTTP/1.1 keep-alive over asyncio, LIFO pool per origin."""

    def __init__(self, fallback: httpx.AsyncBaseTransport | None = None) -> None:
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._fallback = fallback

    def _other(self) -> httpx.AsyncBaseTransport:
        if self._fallback is None:  # built on first use: an SSL context costs milliseconds
            self._fallback = httpx.AsyncHTTPTransport()
        return self._fallback

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http" or request.method == "HEAD":
            return await self._other().handle_async_request(request)
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        origin = (url.host, url.port or 80)
        body = await request.aread()
        head = [request.method.encode(), b" ", url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            head += [name, b": ", value, b"\r\n"]
        head += [b"\r\n", body]
        conn = self._reuse(origin) or await self._connect(request, origin, timeouts.get("connect"))
        try:
            assert conn.transport is not None
            conn.transport.write(b"".join(head))
            while not conn.headers_done:
                await conn.wait(timeouts.get("read"))
        except BaseException:
            conn.close()
            raise
        return httpx.Response(
            conn.status, headers=conn.headers,
            stream=_ResponseBody(self, origin, conn, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": conn.reason},
        )

    def _reuse(self, origin: tuple[str, int]) -> Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.begin()
                return conn
        return None

    async def _connect(self, request: httpx.Request, origin: tuple[str, int],
                       timeout: float | None) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(Connection, *origin)
        except TimeoutError as exc:
            message = f"Timed out connecting to {origin[0]}:{origin[1]}"
            raise httpx.ConnectTimeout(message, request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        return conn

    def release(self, origin: tuple[str, int], conn: Connection) -> None:
        """Back to the pool when the response was read to its end on a keep-alive
        connection; closed otherwise (a half-read response cannot be resumed)."""
        conn.in_use = False
        idle = self._idle.setdefault(origin, [])
        reusable = conn.complete and conn.keep_alive and not conn.closed
        if reusable and len(idle) < _MAX_IDLE_PER_ORIGIN:
            idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()
