"""Any ASGI app under a real uvicorn server on 127.0.0.1, and the bare ASGI pieces the fake
OpenAI server is built from.

``serve(app)`` runs the app in a daemon thread of this process on a free loopback port
(the lifespan runs, as in production) and yields a :class:`Served`: its URL and its event
loop, so a test can count the tasks left on it. The gateway under test, the fake upstream
and the fake embedder are all started this way.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

Receive = Any
Send = Any


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT
    loop: asyncio.AbstractEventLoop

    def task_count(self) -> int:
        """Tasks alive on the server's event loop (besides the one counting)."""

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(10)


@contextmanager
def serve(app: Any, *, port: int = 0, start_timeout_s: float = 180.0,
          backlog: int = 2048) -> Iterator[Served]:
    """Run ``app`` under uvicorn on 127.0.0.1 (a free port unless ``port``), stop it on exit.

    The bound socket goes to uvicorn, so no other process can take the port meanwhile.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False,
                            timeout_graceful_shutdown=5, backlog=backlog)
    server = uvicorn.Server(config)
    loops: list[asyncio.AbstractEventLoop] = []

    async def run() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    def run_in_thread() -> None:  # on the loop uvicorn would choose (uvloop when installed)
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(run())

    thread = threading.Thread(target=run_in_thread, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("uvicorn did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", loops[0])
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


# --- bare ASGI (no framework: a fake must never be the bottleneck of a benchmark) --------


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer an ASGI lifespan scope: nothing to start or stop."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def read_body(receive: Receive) -> bytes:
    """The whole request body of an ASGI http scope."""
    body = b""
    while True:
        event = await receive()
        body += event.get("body", b"")
        if not event.get("more_body"):
            return bytes(body)


async def send_bytes(send: Send, status: int, data: bytes, media: str = "application/json",
                     headers: dict[str, str] | None = None) -> None:
    """A whole response: status, content type, length, any extra headers, then the body."""
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media.encode()),
                            (b"content-length", str(len(data)).encode()), *extra]})
    await send({"type": "http.response.body", "body": data})


async def send_json(send: Send, status: int, payload: Any,
                    headers: dict[str, str] | None = None) -> None:
    await send_bytes(send, status, json.dumps(payload).encode(), headers=headers)


async def wait_unless_hung_up(receive: Receive, seconds: float) -> bool:
    """Sleep ``seconds`` unless the client hangs up first (then False at once), so a held
    answer never keeps a socket open for a client that left. Call after the body is read."""
    try:
        event = await asyncio.wait_for(receive(), seconds)
    except TimeoutError:
        return True
    return bool(event["type"] != "http.disconnect")


async def drop_connection(send: Send) -> None:
    """Close the connection at once, without another byte (a crashed or cut-off server).

    ASGI has no word for this, so it takes uvicorn's transport: the ``send`` uvicorn gives
    an app is a method of its request cycle, which holds it.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("drop_connection needs the send callable of a uvicorn server")
    transport.abort()
    # Let connection_lost run before returning: uvicorn then counts the client as gone and
    # neither sends a 500 nor logs an unfinished response.
    await asyncio.sleep(0)
