"""``PooledHTTP11Transport`` under httpx against real sockets on 127.0.0.1.

A raw asyncio server (faking only the HTTP boundary) answers as a script says, so the
tests can count connections and inject what real servers do on bad days: chunked
streams, idle keep-alive connections closed by the server, truncated bodies, silence.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from eval.http_transport import PooledHTTP11Transport, lean_transport_applies

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


def _response(body: bytes, *, close: bool = False) -> bytes:
    extra = b"connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%b\r\n%b" % (len(body), extra, body)


class Server:
    """Counts connections; ``handler`` serves each one."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Start = Callable[[Handler], Awaitable[tuple[Server, str]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[asyncio.Server] = []

    async def make(handler: Handler) -> tuple[Server, str]:
        server = Server(handler)
        listening = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        servers.append(listening)
        port = listening.sockets[0].getsockname()[1]
        return server, f"http://127.0.0.1:{port}"

    yield make
    for listening in servers:
        listening.close()


def _client(transport: PooledHTTP11Transport, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=timeout)


async def test_sequential_requests_reuse_one_connection(start: Start) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await _read_request(reader)
            server.requests.append(request)
            writer.write(_response(request.rsplit(b"\r\n\r\n", 1)[1]))

    server, url = await start(echo)
    async with _client(PooledHTTP11Transport()) as client:
        for n in range(5):
            response = await client.post(f"{url}/v1/x?q=1", json={"n": n})
            assert response.json() == {"n": n}
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /v1/x?q=1 HTTP/1.1\r\n")
    assert b"host: 127.0.0.1" in server.requests[0].lower()


async def test_chunked_stream_arrives_piece_by_piece(start: Start) -> None:
    release = asyncio.Event()

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\ndata: \r\n")
        await writer.drain()
        await release.wait()  # the client must see the first piece before the rest exists
        writer.write(b"3\r\nend\r\n0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.5)

    _, url = await start(chunked)
    async with _client(PooledHTTP11Transport()) as client, client.stream("GET", url) as response:
        pieces = []
        async for piece in response.aiter_raw():
            pieces.append(piece)
            release.set()
    assert b"".join(pieces) == b"data: end"


async def test_idle_connection_closed_by_the_server_is_not_reused(start: Start) -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_response(b"ok"))  # keep-alive promised, then the server goes away
        await writer.drain()

    server, url = await start(one_then_close)
    async with _client(PooledHTTP11Transport()) as client:
        assert (await client.get(url)).text == "ok"
        await asyncio.sleep(0.1)  # the server's FIN reaches the event loop
        assert (await client.get(url)).text == "ok"
    assert server.connections == 2


async def test_truncated_body_is_a_protocol_error(start: Start) -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()

    _, url = await start(truncated)
    async with _client(PooledHTTP11Transport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)


async def test_silent_server_times_out_on_read(start: Start) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    _, url = await start(silent)
    async with _client(PooledHTTP11Transport(), timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(url)


async def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with _client(PooledHTTP11Transport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


def test_only_plain_http_without_a_proxy_uses_the_lean_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert lean_transport_applies("http://127.0.0.1:8000/v1")
    assert not lean_transport_applies("https://api.example.com/v1")
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    assert not lean_transport_applies("http://models.example/v1")
