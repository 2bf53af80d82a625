"""Request limits: per-key rate, body size, messages and characters, and a max_tokens cap.

All are enforced in one pure-ASGI middleware, before any route code runs, so a refused
request costs no retrieval and no upstream call, and streamed responses stay unbuffered:

- ``rate_limit_rpm``: requests per minute per key (per client address when the gateway is
  open), a token bucket that allows bursts up to one minute's worth; ``429`` with
  ``Retry-After`` in whole seconds. Buckets live in the process: with N workers or
  replicas the effective limit is N times higher, unless ``redis_url`` is set: then the
  rate and the upstream cap hold for the whole deployment (``shared_limits.py``).
- ``max_body_bytes``: ``413`` from ``Content-Length`` at once, or while a body without
  one is read.
- ``max_messages`` / ``max_chars``: ``400`` on the chat routes, counted over message
  contents (strings and the text of content parts).
- ``max_tokens_cap``: on the chat routes, ``max_tokens`` and ``max_completion_tokens``
  are lowered to the cap, and ``max_tokens`` is set to it when the client gave neither,
  so the upstream is never asked for more.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import GatewayError, InvalidRequest, error_response
from app.grounding.queries import text_parts
from app.http.errors import PayloadTooLarge, RateLimited
from app.http.security import OPEN_PATHS

if TYPE_CHECKING:  # imported only with a Redis URL: redis and limits stay optional
    from app.http.shared_limits import SharedGate

# The routes whose JSON body holds `messages`, with the token fields each one accepts.
CHAT_TOKEN_FIELDS: dict[str, tuple[str, ...]] = {
    "/v1/chat/completions": ("max_tokens", "max_completion_tokens"),
    "/v1/chat": ("max_tokens",),
}
_MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets per client: ``rpm`` tokens, refilled continuously over a minute."""

    def __init__(self, rpm: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rpm = rpm
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, client: str) -> float:
        """Take a token for ``client``: 0.0 if granted, else seconds until one is due."""
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[client] = _Bucket(float(self.rpm), now)
        bucket.tokens = min(self.rpm, bucket.tokens + (now - bucket.updated) * self.rpm / 60)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) * 60 / self.rpm

    def _forget_full(self, now: float) -> None:
        # A bucket refilled to the brim is the same as no bucket: drop those.
        full = 60.0
        for client, bucket in list(self._buckets.items()):
            if now - bucket.updated >= full:
                del self._buckets[client]


def check_chat_body(
    body: bytes, token_fields: tuple[str, ...], settings: Settings
) -> tuple[bytes, dict[str, Any]]:
    """Check a chat request's messages and cap its token fields.

    Returns:
        The body to pass on (re-encoded only when a cap changed it) and what the access
        log may record: ``message_count``, ``message_chars``, and ``request_messages``.
        A body that is not a JSON object with a list of messages passes unchanged, for
        the route's own validation to answer.

    Raises:
        InvalidRequest: too many messages or characters (400).
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested too deep: the route's 400
        return body, {}
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        return body, {}
    messages: list[Any] = payload["messages"]
    chars = sum(
        len(text) for m in messages if isinstance(m, dict) for text in text_parts(m.get("content"))
    )
    facts = {"message_count": len(messages), "message_chars": chars, "request_messages": messages}
    if len(messages) > settings.max_messages:
        raise InvalidRequest(
            f"Too many messages: {len(messages)} (at most {settings.max_messages}).",
            param="messages",
            code="too_many_messages",
        )
    if chars > settings.max_chars:
        raise InvalidRequest(
            f"Messages too long: {chars} characters (at most {settings.max_chars}).",
            param="messages",
            code="too_many_characters",
        )
    cap = settings.max_tokens_cap
    if cap is None:
        return body, facts
    changed = False
    for field in token_fields:
        value = payload.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > cap:
            payload[field] = cap
            changed = True
    if all(payload.get(field) is None for field in token_fields):
        payload[token_fields[0]] = cap
        changed = True
    return (json.dumps(payload, ensure_ascii=False).encode() if changed else body), facts


class LimitsMiddleware:
    """Applies the limits above; inside the auth middleware, so it knows the key."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_limit_rpm) if settings.rate_limit_rpm else None
        # With Redis, rate and upstream cap are the deployment's (app/http/shared_limits.py);
        # the per-process limiter above is then only the fail-open fallback.
        self.shared: SharedGate | None = None
        if settings.redis_url:
            from app.http.shared_limits import SharedGate, SharedLimits

            self.shared = SharedGate(
                SharedLimits(settings.redis_url, rpm=settings.rate_limit_rpm,
                             slots=settings.max_concurrent_upstream),
                fail_open=settings.redis_fail_open)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        slot = None
        try:
            scope, receive = await self._admit(scope, receive)
            if self.shared is not None and "request_messages" in scope["state"]:  # a chat
                slot = await self.shared.take(scope, self.settings.upstream_queue_timeout_s)
        except GatewayError as error:
            await error_response(error)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)  # a stream holds its slot to the end
        finally:
            if slot is not None and self.shared is not None:
                await self.shared.limits.give_back(slot)

    async def _admit(self, scope: Scope, receive: Receive) -> tuple[Scope, Receive]:
        state = scope.setdefault("state", {})
        if self.limiter is not None:
            client = state.get("api_key_id") or f"addr:{(scope.get('client') or ('-',))[0]}"
            wait = await self.shared.rate(scope, client) if self.shared is not None else None
            if wait is None:  # no Redis, or Redis down and failing open
                wait = self.limiter.acquire(client)
            if wait > 0:
                raise RateLimited(
                    f"Rate limit of {self.settings.rate_limit_rpm} requests per minute "
                    "reached; retry later.",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        limit = self.settings.max_body_bytes
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _too_large(limit)
        token_fields = CHAT_TOKEN_FIELDS.get(scope["path"])
        if scope["method"] != "POST" or token_fields is None:
            return scope, _bounded(receive, limit)
        body = await _read_body(receive, limit)
        body, facts = check_chat_body(body, token_fields, self.settings)
        state.update(facts)
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        return {**scope, "headers": headers}, _replay(body, receive)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body too large (at most {limit} bytes).")


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields ``body`` once, then defers to the client (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _bounded(receive: Receive, limit: int) -> Receive:
    """A receive that raises :class:`PayloadTooLarge` once ``limit`` bytes have passed."""
    size = 0

    async def bounded() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise _too_large(limit)
        return message

    return bounded
