"""The one fake OpenAI-compatible server of the tests and the benchmarks, on 127.0.0.1.

It fakes only the HTTP boundary: a bare ASGI app (no framework, so it is never the
bottleneck of a benchmark) under a real uvicorn (``with FakeOpenAI() as fake``;
``fake.base_url`` ends in ``/v1``; ``python -m tests.fakes.openai_server --port N`` serves
one alone). The request's ``model`` picks the behaviour; any other name gets the server's
``default`` (``reply`` unless set). Answers (HTTP 200):

* ``reply``: two judge scores to a judge prompt, a letter to a multiple-choice prompt
  (JSON under a ``json_schema`` response_format), else ``echo: <last user text>``
  (:func:`tests.fakes.wire.deterministic_reply`; override :meth:`FakeOpenAI.reply`);
* ``fixed``: the server's ``text`` (the benchmarks' upstream: the same whatever was asked);
* ``knowledge``: a ``<culture_knowledge>`` block, then the answer;
* ``mid-tag``: an answer cut by ``max_tokens`` inside an opening tag (finish ``length``).

Faults:

* ``slow``: the answer after ``delay_s`` seconds (nothing is sent meanwhile);
* ``trickle``: a stream that sends a delta every ``trickle_s`` seconds;
* ``stall-mid-stream`` / ``drop-mid-stream``: two events, then ``delay_s`` of silence and
  the connection cut / the connection cut at once (no terminating chunk);
* ``drop-before-response``: the request is read, then the connection is cut;
* ``status-<code>`` / ``status-<code>-retry-after``: an OpenAI error body with that
  status (and ``Retry-After: 3`` with the suffix);
* ``malformed-json``: HTTP 200 with a truncated JSON body (chat and embeddings);
* ``malformed-sse``: one good event, then ``data: {not json``;
* ``no-done``: a stream that ends cleanly but without ``data: [DONE]``;
* ``fail(status, times)``: the next requests fail with ``status``, whatever their model;
  ``schema_support=False``: a 400 to a ``json_schema`` response_format, and one to a
  request with a field named in ``unsupported`` (an upstream that does not know it).

``POST /v1/embeddings`` answers when the server is given a real ``embedder``
(:mod:`tests.fakes.embeddings`: its vectors, or ``float-lists``, ``wrong-dimension``,
``missing-vector``, and ``impostor`` vectors). Every request is counted (``received``
bodies, ``headers``, ``attempts`` per model, ``answered`` per prompt, ``max_in_flight``);
a held answer gives up as soon as its client hangs up.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from contextlib import ExitStack
from typing import Any, Self

import uvicorn

from retrieval.protocols import Embedder
from tests.fakes import loopback, wire
from tests.fakes.embeddings import EMBEDDING_FAULTS, embeddings_body
from tests.fakes.loopback import Receive, Send, send_bytes, send_json, wait_unless_hung_up

BEHAVIOURS = frozenset({
    "reply", "fixed", "knowledge", "mid-tag", "slow", "trickle", "stall-mid-stream",
    "drop-mid-stream", "drop-before-response", "malformed-json", "malformed-sse", "no-done",
}) | EMBEDDING_FAULTS
_CANNED = {"knowledge": (wire.KNOWLEDGE_ANSWER, "stop"), "mid-tag": (wire.MID_TAG_ANSWER, "length")}


class FakeOpenAI:
    """The ASGI app, what it has seen, and (``with``) the server that runs it."""

    def __init__(self, *, default: str = "reply", text: str = wire.FIXED_ANSWER,
                 pieces: str = "words", models: tuple[str, ...] | None = None,
                 delay_s: float = 3.0, latency_s: float = 0.0, trickle_s: float = 1.0,
                 schema_support: bool = True, unsupported: tuple[str, ...] = (),
                 embedder: Embedder | None = None, record: bool = True) -> None:
        """Args: ``pieces``: how a stream splits the text (``chars``, ``words``, ``whole``);
        ``models``: what ``/v1/models`` lists (the default behaviour's name unless set);
        ``latency_s``: how long every chat answer takes; ``record``: keep the bodies and
        count answers per prompt (off for long benchmarks)."""
        self.default, self.text, self.pieces = default, text, pieces
        self.models = models or (default,)
        self.delay_s, self.latency_s, self.trickle_s = delay_s, latency_s, trickle_s
        self.schema_support, self.unsupported = schema_support, unsupported
        self.embedder, self.record = embedder, record
        self.impostor = False
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # of every request, /models included
        self.attempts: Counter[str] = Counter()  # model -> requests received
        self.answered: Counter[str] = Counter()  # prompt key -> chat answers sent
        self.requests, self.in_flight, self.max_in_flight = 0, 0, 0
        self.last_body: dict[str, Any] = {}
        self._failing: tuple[int, int | None] | None = None
        self._stack = ExitStack()
        self.served: loopback.Served | None = None

    # --- what a test reads and sets ---------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self.served is not None, "use the server in a with block"
        return f"{self.served.url}/v1"

    def fail(self, status: int | None, times: int | None = None) -> None:
        """The next ``times`` requests (all when None) fail with ``status``; None: stop."""
        self._failing = None if status is None or times == 0 else (status, times)

    def reset(self) -> None:
        self.received.clear()
        self.headers.clear()
        self.attempts.clear()
        self.max_in_flight = self.in_flight

    @staticmethod
    def prompt_key(messages: list[dict[str, Any]]) -> str:
        return json.dumps(messages, sort_keys=True)

    def reply(self, messages: list[dict[str, Any]], structured: bool) -> str:
        """What the ``reply`` behaviour answers (override to fake another model)."""
        return wire.deterministic_reply(messages, structured)

    def __enter__(self) -> Self:
        self.served = self._stack.enter_context(loopback.serve(self))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self.served = None

    # --- the ASGI app -------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await loopback.serve_lifespan(receive, send)
            return
        raw = await loopback.read_body(receive)
        if self.record:
            self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        path = scope["path"]
        if path.endswith("/models"):
            data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models]
            await send_json(send, 200, {"object": "list", "data": data})
        elif path.endswith("/chat/completions") or (path.endswith("/embeddings")
                                                      and self.embedder is not None):
            await self._request(path, json.loads(raw or b"{}"), receive, send)
        else:
            await send_json(send, 404, wire.error_body(404))

    def _behaviour(self, model: str) -> str:
        return model if model in BEHAVIOURS or model.startswith("status-") else self.default

    async def _request(self, path: str, body: dict[str, Any], receive: Receive,
                       send: Send) -> None:
        model = str(body.get("model"))
        self.requests += 1
        self.attempts[model] += 1
        self.last_body = body
        if self.record:
            self.received.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if await self._fault(self._behaviour(model), receive, send):
                return
            if path.endswith("/embeddings"):
                assert self.embedder is not None
                await send_bytes(send, 200, embeddings_body(
                    self.embedder, body, impostor=self.impostor,
                    asked_before=self.attempts[model] - 1))
            else:
                await self._chat(model, body, receive, send)
        finally:
            self.in_flight -= 1

    async def _fault(self, behaviour: str, receive: Receive, send: Send) -> bool:
        """Answer with the fault the request or the server asks for; False when none."""
        if self._failing is not None:
            status, times = self._failing
            self._failing = None if times == 1 else (status, None if times is None else times - 1)
            behaviour = f"status-{status}"
        if behaviour == "slow" and not await wait_unless_hung_up(receive, self.delay_s):
            return True
        if behaviour == "drop-before-response":
            await loopback.drop_connection(send)
        elif behaviour.startswith("status-"):
            code = int(behaviour.split("-")[1])
            headers = {"Retry-After": "3"} if behaviour.endswith("-retry-after") else {}
            await send_json(send, code, wire.error_body(code), headers=headers)
        elif behaviour == "malformed-json":
            await send_bytes(send, 200, b'{"id": "chatcmpl-fake", "choices": [')
        else:
            return False
        return True

    async def _chat(self, model: str, body: dict[str, Any], receive: Receive,
                    send: Send) -> None:
        if self.latency_s and not await wait_unless_hung_up(receive, self.latency_s):
            return
        structured = (body.get("response_format") or {}).get("type") == "json_schema"
        if (structured and not self.schema_support) or any(f in body for f in self.unsupported):
            await send_json(send, 400, wire.error_body(400))
            return
        behaviour = self._behaviour(model)
        messages = body.get("messages") or []
        canned = {"fixed": (self.text, "stop"), **_CANNED}.get(behaviour)
        text, finish = canned or (self.reply(messages, structured), "stop")
        if self.record:
            self.answered[self.prompt_key(messages)] += 1
        if not body.get("stream"):
            await send_json(send, 200, wire.completion(model, text, finish))
            return
        events = [wire.chunk(model, {"role": "assistant", "content": ""})]
        events += [wire.chunk(model, {"content": p}) for p in wire.pieces(text, self.pieces)]
        events.append(wire.chunk(model, {}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(wire.usage_chunk(model))
        if behaviour != "no-done":
            events.append(b"data: [DONE]\n\n")
        await self._stream(behaviour, events, receive, send)

    async def _stream(self, behaviour: str, events: list[bytes], receive: Receive,
                      send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for i, event in enumerate(events):
            if i == 2 and behaviour in ("stall-mid-stream", "drop-mid-stream"):
                if behaviour == "stall-mid-stream":
                    await wait_unless_hung_up(receive, self.delay_s)
                await loopback.drop_connection(send)
                return
            if i > 1 and behaviour == "trickle" and not await wait_unless_hung_up(
                    receive, self.trickle_s):
                return
            if i == 1 and behaviour == "malformed-sse":
                event = b"data: {not json\n\n"
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def main(argv: list[str] | None = None) -> None:
    """Serve one fake on a fixed port, in this process's main thread, until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--default", default="reply", help="behaviour of unlisted models")
    parser.add_argument("--model", action="append", help="what /v1/models lists")
    parser.add_argument("--pieces", default="words", choices=("chars", "words", "whole"))
    parser.add_argument("--no-record", action="store_true", help="keep no request bodies")
    args = parser.parse_args(argv)
    fake = FakeOpenAI(default=args.default, pieces=args.pieces, record=not args.no_record,
                      models=tuple(args.model) if args.model else None)
    uvicorn.run(fake, host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, backlog=4096)


if __name__ == "__main__":
    main()
