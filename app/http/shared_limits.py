"""Limits shared by every worker and replica, held in Redis (``CULTURESAFE_REDIS_URL``).

- Per-key rate (``rate_limit_rpm``): the `limits` library's async Redis storage, moving
  window of one minute: at most ``rpm`` requests in any 60 s, counted over the whole
  deployment (not ``rpm`` per process).
- Upstream concurrency (``max_concurrent_upstream``): ``N`` slots, each a redis-py
  ``Lock`` (set-if-absent with an owner token and a TTL, renewed while held). A request
  takes any free slot, waiting up to ``upstream_queue_timeout_s``; a process that dies
  holding one loses it when its TTL runs out, so a crash cannot shrink the cap for good.

Every Redis failure raises :class:`SharedStateDown`; the limits middleware (see
``app/http/limits.py``) then counts it, logs it, and fails open or closed as configured.
Without a Redis URL none of this exists and the limits are per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError
from starlette.types import Scope

from app.backends.errors import Overloaded
from app.errors import GatewayError

_PREFIX = "culturesafe"
_SOCKET_TIMEOUT_S = 2.0
_POLL_S = 0.05
SLOT_TTL_S = 30.0
_LOG_EVERY_S = 10.0
log = logging.getLogger(__name__)


class SharedStateDown(Exception):
    """Redis could not be asked (unreachable, timed out, refused)."""


class SharedLimits:
    """The deployment-wide rate limiter and upstream slots.

    Args:
        redis_url: ``redis://`` or ``rediss://`` URL.
        rpm: requests per minute per client; 0: no rate limit.
        slots: upstream calls in flight across the deployment.
        slot_ttl_s: how long a slot outlives its holder's last renewal.
    """

    def __init__(self, redis_url: str, *, rpm: int, slots: int,
                 slot_ttl_s: float = SLOT_TTL_S) -> None:
        self.rpm, self.slots, self.slot_ttl_s = rpm, slots, slot_ttl_s
        self._item = RateLimitItemPerMinute(rpm) if rpm else None
        storage = RedisStorage(f"async+{redis_url}", implementation="redispy",
                               wrap_exceptions=True, socket_timeout=_SOCKET_TIMEOUT_S,
                               socket_connect_timeout=_SOCKET_TIMEOUT_S)
        self._limiter = MovingWindowRateLimiter(storage)
        self._redis = Redis.from_url(redis_url, socket_timeout=_SOCKET_TIMEOUT_S,
                                     socket_connect_timeout=_SOCKET_TIMEOUT_S)
        self._renewals: dict[Lock, asyncio.Task[None]] = {}

    async def hit(self, client: str) -> float:
        """Count a request of ``client``: 0.0 if allowed, else seconds until one is.

        Raises:
            SharedStateDown: Redis failed.
        """
        if self._item is None:
            return 0.0
        try:
            if await self._limiter.hit(self._item, _PREFIX, client):
                return 0.0
            stats = await self._limiter.get_window_stats(self._item, _PREFIX, client)
        except (StorageError, RedisError, OSError) as exc:
            raise SharedStateDown(str(exc)) from exc
        return max(1.0, stats.reset_time - time.time())

    async def take(self, queue_timeout_s: float) -> Lock:
        """One of the deployment's upstream slots; :meth:`give_back` it when done. Its
        TTL is renewed in the background meanwhile (a stream may outlast it).

        Raises:
            Overloaded: no slot came free within ``queue_timeout_s`` (503).
            SharedStateDown: Redis failed.
        """
        deadline = time.monotonic() + queue_timeout_s
        order = list(range(self.slots))
        while True:
            random.shuffle(order)  # spread the tries: a busy slot costs one round trip
            for index in order:
                lock = self._redis.lock(f"{_PREFIX}:upstream-slot:{index}",
                                        timeout=self.slot_ttl_s, thread_local=False)
                try:
                    if await lock.acquire(blocking=False):
                        self._renewals[lock] = asyncio.create_task(self._renew(lock))
                        return lock
                except (RedisError, OSError) as exc:
                    raise SharedStateDown(str(exc)) from exc
            if time.monotonic() >= deadline:
                raise Overloaded(
                    "Too many requests are waiting for the model server; retry shortly.",
                    headers={"Retry-After": "1"},
                )
            await asyncio.sleep(_POLL_S)

    async def give_back(self, lock: Lock) -> None:
        """Release a slot from :meth:`take` (never raises: an unreleased slot expires)."""
        renewal = self._renewals.pop(lock, None)
        if renewal is not None:
            renewal.cancel()
        with contextlib.suppress(LockError, RedisError, OSError):
            await lock.release()

    async def _renew(self, lock: Lock) -> None:
        while True:  # a dead process stops renewing, and its slot expires
            await asyncio.sleep(self.slot_ttl_s / 3)
            with contextlib.suppress(LockError, RedisError, OSError):
                await lock.reacquire()

    async def aclose(self) -> None:
        await self._redis.aclose()


class SharedStateUnavailable(GatewayError):
    """Redis is down and ``redis_fail_open`` is off: refuse rather than exceed a limit."""

    status_code = 503
    type = "server_error"
    code = "shared_limits_unavailable"


class SharedGate:
    """:class:`SharedLimits` behind the failure policy of ``redis_fail_open``.

    When Redis fails, ``culturesafe_shared_state_errors_total{op}`` counts it and a
    warning is logged (at most every 10 s); then, failing open, the request goes on under
    the per-process limits (``None`` from :meth:`rate`, no shared slot); failing closed,
    it gets a 503 ``shared_limits_unavailable`` with ``Retry-After``. Never a 500.
    """

    def __init__(self, limits: SharedLimits, *, fail_open: bool) -> None:
        self.limits, self.fail_open = limits, fail_open
        self._errors: Counter | None = None
        self._logged_at = -_LOG_EVERY_S

    async def rate(self, scope: Scope, client: str) -> float | None:
        """Seconds to wait (0.0: allowed); None: Redis is down, apply the local limit."""
        try:
            return await self.limits.hit(client)
        except SharedStateDown as exc:
            self._down(scope, "rate_limit", exc)
            return None

    async def take(self, scope: Scope, queue_timeout_s: float) -> Lock | None:
        """A deployment-wide upstream slot; None: Redis is down and we fail open."""
        try:
            return await self.limits.take(queue_timeout_s)
        except SharedStateDown as exc:
            self._down(scope, "upstream_slot", exc)
            return None

    def _down(self, scope: Scope, op: str, exc: Exception) -> None:
        self._counter(scope).labels(op).inc()
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY_S:
            self._logged_at = now
            log.warning("shared limits: Redis unavailable for %s (%s); failing %s", op, exc,
                        "open: per-process limits apply" if self.fail_open else "closed: 503")
        if not self.fail_open:
            raise SharedStateUnavailable(
                "Request limits cannot be checked right now; retry shortly.",
                headers={"Retry-After": "1"})

    def _counter(self, scope: Scope) -> Counter:
        if self._errors is None:  # in the app's own registry (one per app)
            registry = scope["app"].state.metrics.registry
            self._errors = Counter("culturesafe_shared_state_errors",
                                   "Redis failures of the shared limits, by operation",
                                   ["op"], registry=registry)
        return self._errors
