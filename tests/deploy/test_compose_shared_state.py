"""docker-compose.yml's valkey service: the shared state of several gateway processes
(rate limits, upstream slots, job leases), opt-in, on the compose network only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from app.config import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_valkey_is_opt_in_and_reachable_only_on_the_compose_network(
    compose: dict[str, Any],
) -> None:
    valkey = compose["services"]["valkey"]
    assert valkey["profiles"] == ["shared"]
    assert valkey["image"].startswith("valkey/valkey:")
    assert "ports" not in valkey and valkey["expose"] == ["6379"]
    assert "ping" in valkey["healthcheck"]["test"]
    # A bare `docker compose up` does not need it: the gateways fail open without it.
    for name in ("gateway", "gateway-cpu"):
        assert "valkey" not in compose["services"][name].get("depends_on", {})


def test_the_documented_redis_url_is_passed_to_the_gateways(compose: dict[str, Any]) -> None:
    url = re.search(r"CULTURESAFE_REDIS_URL=(\S+)", COMPOSE.read_text(encoding="utf-8"))
    assert url is not None and url.group(1) == "redis://valkey:6379/0"
    for name in ("gateway", "gateway-cpu"):
        env = compose["services"][name]["environment"]
        # Passed through from the shell or .env (a key without a value in compose).
        for variable in ("CULTURESAFE_REDIS_URL", "CULTURESAFE_ALLOW_UNAUTHENTICATED"):
            assert variable in env and env[variable] is None
    assert Settings(redis_url=url.group(1)).redis_url == url.group(1)
