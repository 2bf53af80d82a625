"""A fake OpenAI-compatible ``POST /v1/embeddings`` server on 127.0.0.1, for fault tests.

It fakes only the HTTP boundary. Its vectors come from a real embedder it is given
(the packaged MiniLM in the tests), so what differs from a real service is only the
fault it produces on cue. The request's ``model`` picks the behaviour:

* any name not below: the real vectors, base64 float32 or float lists as asked;
* ``float-lists``: the real vectors as float lists, whatever was asked;
* ``slow``: the real vectors after ``delay_s`` seconds;
* ``status-<code>``: an OpenAI error body with that status;
* ``wrong-dimension``: vectors of ``dimension + 1`` numbers, after the first request
  naming it (so the dimension probe at start-up succeeds and a later answer is wrong);
* ``missing-vector``: one vector fewer than texts;
* ``malformed``: HTTP 200 with a body that is not JSON;

With ``impostor`` set, every answer has vectors of the right dimension that are not the
model's (another model served under the expected name); with ``fail_with`` set to a
status, every request fails with it (a service that goes down after start-up). Every
request body is kept in ``received`` (to count round trips).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import uvicorn

from retrieval.protocols import Embedder
from tests.fakes.openai_server import read_body, serve_lifespan


class FakeEmbeddings:
    """The ASGI app and what it has seen."""

    def __init__(self, embedder: Embedder, delay_s: float = 2.0) -> None:
        self.embedder = embedder
        self.delay_s = delay_s
        self.impostor = False
        self.fail_with: int | None = None
        self.received: list[dict[str, Any]] = []
        self.url = ""

    def _vectors(self, model: str, texts: list[str]) -> np.ndarray:
        if self.impostor:
            rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(
                size=self.embedder.dimension) for t in texts]
            return np.asarray(rows, dtype=np.float32)
        vectors = self.embedder.encode(texts)
        asked = sum(1 for body in self.received if body.get("model") == model)
        if model == "wrong-dimension" and asked > 1:
            vectors = np.hstack([vectors, np.ones((len(texts), 1), dtype=np.float32)])
        if model == "missing-vector":
            vectors = vectors[:-1]
        return vectors

    def reply(self, body: dict[str, Any]) -> tuple[int, bytes]:
        self.received.append(body)
        model = str(body.get("model", ""))
        if self.fail_with is not None:
            model = f"status-{self.fail_with}"
        if model.startswith("status-"):
            error = {"error": {"message": "injected fault", "type": "server_error"}}
            return int(model.removeprefix("status-")), json.dumps(error).encode()
        if model == "malformed":
            return 200, b'{"data": [{"index": 0, "embe'
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        as_base64 = body.get("encoding_format") == "base64" and model != "float-lists"
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode()
                 if as_base64 else row.tolist()}
                for i, row in enumerate(self._vectors(model, texts))]
        return 200, json.dumps({"object": "list", "model": model, "data": data[::-1],
                                "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        body = await read_body(receive)
        if scope["path"] == "/v1/embeddings":
            request = json.loads(body)
            if request.get("model") == "slow":
                await asyncio.sleep(self.delay_s)
            status, data = self.reply(request)
        else:
            status, data = 404, b'{"error": {"message": "not found"}}'
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})


@contextmanager
def serve_fake_embeddings(embedder: Embedder, delay_s: float = 2.0) -> Iterator[FakeEmbeddings]:
    """The fake on a free loopback port (``.url`` ends in ``/v1``), stopped on exit."""
    fake = FakeEmbeddings(embedder, delay_s)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(fake, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the fake embeddings server did not start")
        time.sleep(0.01)
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
