"""Job leases (eval/job_lease.py): one holder at a time, and a dead holder's lease frees
(flock: at once; Redis: after its TTL). Real flock, real Redis server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.job_lease import FileLeases, LeaseUnavailable, RedisLeases, keep_alive
from tests.redis_server import (  # noqa: F401 (fixtures)
    clean_redis,
    redis_server_binary,
    redis_url,
)

HOLD = """
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1], thread_local=False, fallback_to_soft=False)
lock.acquire(blocking=False)
print("held", flush=True)
time.sleep(600)
"""


async def test_a_file_lease_has_one_holder_and_frees_when_its_holder_is_sigkilled(
    tmp_path: Path,
) -> None:
    leases = FileLeases()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "job.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert await leases.try_acquire("r", tmp_path) is None
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    finally:
        holder.kill()
    lease = await leases.try_acquire("r", tmp_path)
    assert lease is not None, "the kernel did not free a dead holder's lock"
    assert await leases.try_acquire("r", tmp_path) is None  # held, in this process too
    assert await lease.renew()
    await lease.release()
    again = await leases.try_acquire("r", tmp_path)
    assert again is not None
    await again.release()


async def test_a_redis_lease_has_one_holder_and_expires_after_its_ttl(
    clean_redis: str,  # noqa: F811
) -> None:
    first, second = RedisLeases(clean_redis, ttl_s=1.0), RedisLeases(clean_redis, ttl_s=1.0)
    try:
        lease = await first.try_acquire("r", Path("unused"))
        assert lease is not None and lease.renew_every_s == pytest.approx(1 / 3)
        assert await second.try_acquire("r", Path("unused")) is None
        await asyncio.sleep(0.6)
        assert await lease.renew()  # renewed: still held past the first TTL
        await asyncio.sleep(0.6)
        assert await second.try_acquire("r", Path("unused")) is None
        # The holder "dies": no more renewals. Its lease is free once the TTL ran out.
        start = time.monotonic()
        while (taken := await second.try_acquire("r", Path("unused"))) is None:
            assert time.monotonic() - start < 3, "the lease never expired"
            await asyncio.sleep(0.05)
        assert time.monotonic() - start > 0.3
        assert not await lease.renew(), "a lapsed holder could renew a lease now held by another"
        await taken.release()
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_holder_that_loses_its_lease_is_stopped(clean_redis: str) -> None:  # noqa: F811
    import redis.asyncio

    leases = RedisLeases(clean_redis, ttl_s=0.6)
    lease = await leases.try_acquire("r", Path("unused"))
    assert lease is not None
    holder = asyncio.create_task(asyncio.sleep(30))
    guard = asyncio.create_task(keep_alive(lease, holder))
    async with redis.asyncio.Redis.from_url(clean_redis) as client:
        await client.flushdb()  # the lease is gone (expired and taken, or store wiped)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(holder, 5)
    await guard
    await leases.aclose()


async def test_an_unreachable_redis_is_a_lease_error_not_a_crash(
    redis_server_binary: str,  # noqa: F811 (installs the client if missing)
) -> None:
    leases = RedisLeases("redis://127.0.0.1:1/0", ttl_s=1.0)
    with pytest.raises(LeaseUnavailable, match="unreachable"):
        await leases.try_acquire("r", Path("unused"))
    await leases.aclose()
