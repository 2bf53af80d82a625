"""A fast, deterministic OpenAI-compatible server on 127.0.0.1, for tests and benchmarks.

It answers multiple-choice prompts with a letter and judge prompts with two scores, both
derived from a hash of the prompt, so every run gets the same answers. It counts requests
per prompt (to prove nothing was asked twice), can refuse JSON-schema ``response_format``
with a 400 (to exercise the fallback) and can fail the first N requests with a status.
``python -m tests.fakes.openai_server --port 8011`` serves it on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import threading
import time
from collections import Counter
from typing import Any

import uvicorn

Scope = dict[str, Any]
_LETTER_LINE = re.compile(r"^([A-H])\. ", re.M)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class LoopbackModel:
    """The deterministic 'model' and its counters (shared with the test that owns it)."""

    def __init__(self, *, schema_support: bool = True, fail_first: int = 0,
                 fail_status: int = 503, delay_s: float = 0.0) -> None:
        self.schema_support = schema_support
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay_s = delay_s
        self.answered: Counter[str] = Counter()  # prompt key -> successful answers
        self.requests = 0
        self.last_body: dict[str, Any] = {}
        self._lock = threading.Lock()

    @staticmethod
    def prompt_key(messages: list[dict[str, Any]]) -> str:
        return json.dumps(messages, sort_keys=True)

    def reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one chat completion request."""
        with self._lock:
            self.requests += 1
            self.last_body = body
            if self.requests <= self.fail_first:
                return self.fail_status, {"error": {"message": "injected fault",
                                                    "type": "server_error"}}
        structured = (body.get("response_format") or {}).get("type") == "json_schema"
        if structured and not self.schema_support:
            return 400, {"error": {"message": "response_format is not supported",
                                   "type": "invalid_request_error"}}
        messages = body.get("messages") or []
        key = self.prompt_key(messages)
        text = self._content(messages, structured)
        with self._lock:
            self.answered[key] += 1
        return 200, {
            "id": f"chatcmpl-{_digest(key):x}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "loopback"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": len(key) // 4, "completion_tokens": len(text) // 4,
                      "total_tokens": (len(key) + len(text)) // 4},
        }

    @staticmethod
    def _content(messages: list[dict[str, Any]], structured: bool) -> str:
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        user = next((m["content"] for m in messages if m.get("role") == "user"), "")
        h = _digest(user)
        if "respectfulness" in system:
            return json.dumps({"respectfulness": 1 + h % 10, "awareness": 1 + (h >> 8) % 10,
                               "rationale": "deterministic loopback judgement"})
        letters = _LETTER_LINE.findall(user)
        if letters:
            letter = letters[h % len(letters)]
            return json.dumps({"answer": letter}) if structured else f"Answer: ({letter})"
        return f"A deterministic reply ({h % 1000}) to: {user[:80]}"


async def serve_lifespan(receive: Any, send: Any) -> None:
    """Answer an ASGI lifespan scope: nothing to start or stop."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def read_body(receive: Any) -> bytes:
    """The whole request body of an ASGI http scope."""
    body = b""
    while True:
        event = await receive()
        body += event.get("body", b"")
        if not event.get("more_body"):
            return bytes(body)


def asgi_app(model: LoopbackModel) -> Any:
    """A bare ASGI app (no framework: it must not be the bottleneck of a benchmark)."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        body = await read_body(receive)
        path = scope["path"]
        status: int
        payload: dict[str, Any]
        if path.endswith("/models"):
            status, payload = 200, {"object": "list", "data": [{"id": "loopback",
                                                                   "object": "model"}]}
        elif path.endswith("/chat/completions"):
            if model.delay_s:
                await asyncio.sleep(model.delay_s)
            status, payload = model.reply(json.loads(body or b"{}"))
        else:
            status, payload = 404, {"error": {"message": "not found", "type": "not_found"}}
        data = json.dumps(payload).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    return app


class LoopbackServer:
    """Runs the loopback model with uvicorn in a background thread (a real HTTP server)."""

    def __init__(self, model: LoopbackModel | None = None, port: int = 0) -> None:
        self.model = model or LoopbackModel()
        config = uvicorn.Config(asgi_app(self.model), host="127.0.0.1", port=port,
                                log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        sock = self._server.servers[0].sockets[0]
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("loopback server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8011)
    args = parser.parse_args()
    uvicorn.run(asgi_app(LoopbackModel()), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
