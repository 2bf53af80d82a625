"""Gateway processes as a deployment runs them (``tests/gateway_processes.py``): several,
on loopback, sharing a runs directory and (where the test says so) one Redis server."""

from __future__ import annotations

from tests.redis_server import redis_server_binary, redis_url  # noqa: F401 (fixtures)
