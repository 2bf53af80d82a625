"""A fast OpenAI-compatible upstream for overhead benchmarks: a fixed completion, at once.

A bare ASGI app (no framework, so it is never the bottleneck) served by uvicorn. It
answers ``POST /v1/chat/completions`` with a fixed assistant message, as one JSON body or,
when ``"stream": true``, as server-sent events (role, content, finish, ``[DONE]``), and
``GET /v1/models`` with one model. It reads nothing of the prompt but ``stream``, so its
cost per request is the same whatever the gateway sent.

    .venv/bin/python bench/fast_upstream.py --port 8011
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

# The repository first: run as a script, bench/ would be first and bench/retrieval.py
# would hide the retrieval package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.openai_server import read_body, serve_lifespan  # noqa: E402

MODEL = "fast-upstream"
ANSWER = "Thank you for asking. Customs differ, and each deserves respect."


def _completion() -> bytes:
    return json.dumps({
        "id": "chatcmpl-fast", "object": "chat.completion", "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": ANSWER}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 12, "total_tokens": 112},
    }).encode()


def _chunk(delta: dict[str, Any], finish: str | None) -> bytes:
    body = {"id": "chatcmpl-fast", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _stream() -> list[bytes]:
    return [_chunk({"role": "assistant", "content": ""}, None),
            _chunk({"content": ANSWER}, None), _chunk({}, "stop"), b"data: [DONE]\n\n"]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI entry point."""
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    body = await read_body(receive)
    path = scope["path"]
    if path.endswith("/chat/completions") and b'"stream":true' in body.replace(b" ", b""):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for part in _stream():
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path.endswith("/chat/completions"):
        status, data = 200, _completion()
    elif path.endswith("/models"):
        status, data = 200, json.dumps(
            {"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
    else:
        status, data = 404, b'{"error": {"message": "not found", "type": "not_found"}}'
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8011)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, backlog=4096)


if __name__ == "__main__":
    main()
