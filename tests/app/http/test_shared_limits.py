"""Limits held in Redis (app/http/shared_limits.py): two apps on one real Redis server share
a key's rate; with Redis unreachable, requests fail open (per-process limits) or closed
(503) as configured, counted in a metric and logged, never a 500. The two-process version
(real uvicorn processes): tests/scaling/test_shared_limits.py."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import Gateway
from tests.redis_server import (  # noqa: F401 (fixtures)
    clean_redis,
    redis_server_binary,
    redis_url,
)

KEY, OPS_KEY = "sk-shared-123456", "sk-metrics-654321"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hello"}],
        "culturesafe": {"mode": "off"}}
DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused


def _errors(client: TestClient, op: str) -> float:
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {OPS_KEY}"})
    for line in metrics.text.splitlines():
        if line.startswith(f'culturesafe_shared_state_errors_total{{op="{op}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_two_apps_on_one_redis_share_a_keys_rate(
    gateway: Gateway, clean_redis: str,  # noqa: F811
) -> None:
    with ExitStack() as stack:
        apps = [stack.enter_context(gateway(api_keys=[KEY], rate_limit_rpm=3,
                                            redis_url=clean_redis)) for _ in range(2)]
        codes = [apps[n % 2].get("/v1/models", headers=AUTH).status_code for n in range(6)]
    assert codes == [200, 200, 200, 429, 429, 429]


def test_redis_down_fails_open_to_the_per_process_limits(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, redis_server_binary: str,  # noqa: F811
) -> None:
    caplog.set_level(logging.WARNING, logger="app.http.shared_limits")
    with gateway(api_keys=[KEY, OPS_KEY], rate_limit_rpm=3, redis_url=DOWN) as client:
        codes = [client.get("/v1/models", headers=AUTH).status_code for _ in range(2)]
        chat = client.post("/v1/chat/completions", headers=AUTH, json=CHAT)
        assert chat.status_code == 200, chat.text
        assert codes == [200, 200]
        assert client.get("/v1/models", headers=AUTH).status_code == 429  # local bucket
        assert _errors(client, "rate_limit") >= 3 and _errors(client, "upstream_slot") == 1
    assert "Redis unavailable" in caplog.text and "failing open" in caplog.text


def test_redis_down_fails_closed_with_a_503_when_configured(
    gateway: Gateway, redis_server_binary: str,  # noqa: F811
) -> None:
    with gateway(api_keys=[KEY], rate_limit_rpm=3, redis_url=DOWN,
                 redis_fail_open=False) as client:
        _assert_refused(client.get("/v1/models", headers=AUTH))
        assert client.get("/healthz").status_code == 200  # health is never limited
    with gateway(api_keys=[KEY, OPS_KEY], redis_url=DOWN, redis_fail_open=False) as client:
        _assert_refused(client.post("/v1/chat/completions", headers=AUTH, json=CHAT))
        assert client.get("/v1/models", headers=AUTH).status_code == 200  # no rate limit set
        assert _errors(client, "upstream_slot") == 1


def _assert_refused(refused: Any) -> None:
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "shared_limits_unavailable"
    assert set(error) >= {"message", "type", "param", "code"}
    assert refused.headers["Retry-After"] == "1"
