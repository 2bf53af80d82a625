"""Who runs an evaluation job: one lease per run, so exactly one process of a deployment
runs or resumes it, however many workers or replicas share the runs volume.

Two kinds, chosen by the service (``JobManager(..., redis_url=...)``):

- :class:`FileLeases` (default): an exclusive ``flock`` on ``<run>/job.lock`` through
  `filelock`. The kernel drops it the moment its holder dies (SIGKILL included), so a
  crashed holder's job is free at once; the runs directory must be a volume every
  process sees, on a filesystem with working ``flock`` (local disks, Docker volumes;
  not every network filesystem).
- :class:`RedisLeases` (``CULTURESAFE_REDIS_URL``): a key with a time-to-live through
  redis-py's ``Lock``, renewed by the holder's heartbeat (:meth:`Lease.renew`, every
  third of the TTL). A holder that dies stops renewing, and the job is free once the TTL
  has run out. Works across hosts without a shared lock-capable filesystem (the run
  files themselves must still be shared for status and resume).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Protocol

import filelock

from eval.config import EvalError

LOCK_FILE = "job.lock"
REDIS_PREFIX = "culturesafe:job-lease:"
log = logging.getLogger(__name__)


class LeaseUnavailable(EvalError):
    """The lease store cannot be reached (Redis down): nobody can tell who runs a job."""


class Lease(Protocol):
    """A held lease; the holder renews it while it works and releases it when done."""

    renew_every_s: float | None  # None: nothing to renew (the kernel holds the lock)

    async def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken, or store down)."""

    async def release(self) -> None:
        """Give the lease up (idempotent; never raises)."""


class Leases(Protocol):
    async def try_acquire(self, run_id: str, run_dir: Path) -> Lease | None:
        """The lease of ``run_id`` if nobody holds it, else None (never waits).

        Raises:
            LeaseUnavailable: the store cannot be reached.
        """

    async def aclose(self) -> None: ...


class _FileLease:
    renew_every_s: float | None = None

    def __init__(self, lock: filelock.BaseFileLock) -> None:
        self._lock = lock

    async def renew(self) -> bool:
        return self._lock.is_locked

    async def release(self) -> None:
        with contextlib.suppress(OSError):
            self._lock.release(force=True)


class FileLeases:
    """Leases as ``flock`` on a file in each run directory."""

    async def try_acquire(self, run_id: str, run_dir: Path) -> Lease | None:  # noqa: ARG002
        # fallback_to_soft off: a lock file that outlives a SIGKILLed holder would keep
        # its job stuck; refuse such a filesystem loudly instead.
        lock = filelock.FileLock(run_dir / LOCK_FILE, thread_local=False,
                                 fallback_to_soft=False)
        try:
            lock.acquire(blocking=False)
        except filelock.Timeout:
            return None
        except OSError as exc:
            raise LeaseUnavailable(f"cannot lock {run_dir / LOCK_FILE}: {exc}") from exc
        return _FileLease(lock)

    async def aclose(self) -> None:
        return None


class _RedisLease:
    def __init__(self, lock: object, ttl_s: float) -> None:
        from redis.asyncio.lock import Lock

        assert isinstance(lock, Lock)
        self._lock = lock
        self.renew_every_s: float | None = ttl_s / 3

    async def renew(self) -> bool:
        from redis.exceptions import LockError, RedisError

        try:
            return bool(await self._lock.reacquire())
        except (LockError, RedisError, OSError) as exc:
            log.warning("job lease %s lost: %s", self._lock.name, exc)
            return False

    async def release(self) -> None:
        from redis.exceptions import LockError, RedisError

        with contextlib.suppress(LockError, RedisError, OSError):
            await self._lock.release()


class RedisLeases:
    """Leases as Redis keys with a TTL (redis-py ``Lock``: set-if-absent, owner token)."""

    def __init__(self, url: str, ttl_s: float) -> None:
        import redis.asyncio

        self._client = redis.asyncio.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=5)
        self._ttl_s = ttl_s

    async def try_acquire(self, run_id: str, run_dir: Path) -> Lease | None:  # noqa: ARG002
        from redis.exceptions import RedisError

        lock = self._client.lock(REDIS_PREFIX + run_id, timeout=self._ttl_s,
                                 blocking=False, thread_local=False)
        try:
            if not await lock.acquire():
                return None
        except (RedisError, OSError) as exc:
            raise LeaseUnavailable(f"the job lease store (Redis) is unreachable: {exc}") \
                from exc
        return _RedisLease(lock, self._ttl_s)

    async def aclose(self) -> None:
        await self._client.aclose()


async def keep_alive(lease: Lease, holder: asyncio.Task[None]) -> None:
    """Renew ``lease`` until cancelled; cancel ``holder`` once the lease is lost, so two
    processes never run one job (the new holder resumes from the stored samples)."""
    if lease.renew_every_s is None:
        return
    while True:
        await asyncio.sleep(lease.renew_every_s)
        if not await lease.renew():
            holder.cancel()
            return
