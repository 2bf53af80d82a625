"""A fault-injecting OpenAI-compatible model server: a real HTTP/1.1 server on 127.0.0.1.

It fakes only the HTTP boundary, to produce on cue the faults a real model server
produces by accident. It is written on raw asyncio streams (no framework) so that it can
misbehave at the byte level: hold back the first byte, stall or drop a stream midway,
send malformed JSON or a malformed SSE line. The request's ``model`` picks the behaviour:

* ``ok`` (or any unknown name): a completion whose content is ``echo: <last user text>``
  (streamed one word per chunk when ``stream`` is true);
* ``delay-first-byte``: nothing is sent for ``delay_s`` seconds, then a normal answer;
* ``stall-mid-stream``: two chunks, then silence for ``delay_s`` seconds;
* ``drop-mid-stream``: two chunks, then the connection is cut (no terminating chunk);
* ``drop-before-response``: the request is read, then the connection is closed;
* ``status-<code>`` / ``status-<code>-retry-after``: an OpenAI error body with that
  status (``Retry-After: 3`` with the suffix);
* ``malformed-json``: HTTP 200 with a truncated JSON body;
* ``malformed-sse``: one good chunk, then ``data: {not json``;
* ``no-done``: a stream that ends cleanly but without ``data: [DONE]``;
* ``slow``: a normal answer after ``delay_s`` seconds (back-pressure tests).

Every request is recorded (``received``), the number of requests in flight is tracked
(``max_in_flight``), and a held-back answer gives up as soon as the client hangs up, so
the server never holds sockets for a client that left.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any

_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}


def completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


def echo_of(body: dict[str, Any]) -> str:
    """The content the ``ok`` behaviour answers: ``echo: `` + the last user text."""
    messages = body.get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    text = users[-1].get("content") if users else ""
    return f"echo: {text if isinstance(text, str) else json.dumps(text)}"


class FaultServer:
    """The server, run on its own event loop in a daemon thread (``with FaultServer()``)."""

    def __init__(self, delay_s: float = 3.0) -> None:
        self.delay_s = delay_s
        self.received: list[dict[str, Any]] = []
        self.attempts: Counter[str] = Counter()  # model -> requests received
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        start = asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def reset(self) -> None:
        self.received.clear()
        self.attempts.clear()
        self.max_in_flight = self.in_flight

    # --- HTTP/1.1, just enough of it --------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self._answer(method, path, raw, reader, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, method: str, path: str, raw: bytes, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection must end."""
        if method == "GET" and path.endswith("/models"):
            return await self._json(writer, 200, {"object": "list", "data": [
                {"id": "ok", "object": "model", "owned_by": "fault-server"}]})
        if method != "POST" or not path.endswith("/chat/completions"):
            return await self._json(writer, 404, {"error": {"message": "no such route",
                                                            "type": "not_found_error"}})
        body = json.loads(raw or b"{}")
        model = str(body.get("model"))
        self.received.append(body)
        self.attempts[model] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._chat(model, body, reader, writer)
        finally:
            self.in_flight -= 1

    async def _chat(self, model: str, body: dict[str, Any], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> bool:
        if model in ("delay-first-byte", "slow") and not await self._wait(reader, self.delay_s):
            return False
        if model == "drop-before-response":
            writer.transport.abort()
            return False
        if model.startswith("status-"):
            code = int(model.split("-")[1])
            headers = {"Retry-After": "3"} if model.endswith("retry-after") else {}
            error = {"message": f"injected {code}", "type": "server_error", "code": f"fault_{code}"}
            return await self._json(writer, code, {"error": error}, headers)
        if model == "malformed-json":
            return await self._send(writer, 200, b'{"id": "chatcmpl-fault", "choices": [',
                                    "application/json")
        if not body.get("stream"):
            return await self._json(writer, 200, completion(model, echo_of(body)))
        return await self._stream(model, body, reader, writer)

    async def _stream(self, model: str, body: dict[str, Any], reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        words = echo_of(body).split(" ")
        events = [chunk(model, {"role": "assistant", "content": ""})]
        events += [chunk(model, {"content": w if i == 0 else f" {w}"}) for i, w in enumerate(words)]
        events.append(chunk(model, {}, "stop"))
        for i, event in enumerate(events):
            if i == 2 and model == "stall-mid-stream":
                await writer.drain()
                await self._wait(reader, self.delay_s)
                return False
            if i == 2 and model == "drop-mid-stream":
                await writer.drain()
                writer.transport.abort()
                return False
            if i == 1 and model == "malformed-sse":
                event = b"data: {not json\n\n"
            _write_chunk(writer, event)
        if model != "no-done":
            _write_chunk(writer, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _wait(self, reader: asyncio.StreamReader, seconds: float) -> bool:
        """Sleep ``seconds`` unless the client hangs up first (then False)."""
        try:
            await asyncio.wait_for(reader.read(1), seconds)
        except TimeoutError:
            return True
        return False

    async def _json(self, writer: asyncio.StreamWriter, status: int, payload: Any,
                    headers: dict[str, str] | None = None) -> bool:
        return await self._send(writer, status, json.dumps(payload).encode(), "application/json",
                                headers)

    async def _send(self, writer: asyncio.StreamWriter, status: int, data: bytes, media: str,
                    headers: dict[str, str] | None = None) -> bool:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                     f"content-type: {media}\r\ncontent-length: {len(data)}\r\n{extra}\r\n"
                     .encode() + data)
        await writer.drain()
        return True


def _write_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
