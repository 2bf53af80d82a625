"""Two gateway processes and one Redis server: a key's rate limit and the upstream
concurrency cap hold for the pair (N in all), not N per process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.gateway_processes import Gateway, gateways

RPM = 5


@pytest.fixture(scope="module")
def pair(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FakeOpenAI, list[Gateway]]]:
    tmp = tmp_path_factory.mktemp("shared-limits")
    with FakeOpenAI() as upstream:
        env = {"CULTURESAFE_BACKEND": "upstream", "CULTURESAFE_UPSTREAM_BASE_URL":
               upstream.base_url, "CULTURESAFE_REDIS_URL": redis_url,
               "CULTURESAFE_API_KEYS": "rate-key,cap-key", "CULTURESAFE_RATE_LIMIT_RPM": str(RPM),
               "CULTURESAFE_MAX_CONCURRENT_UPSTREAM": "1",
               "CULTURESAFE_UPSTREAM_QUEUE_TIMEOUT_S": "0.3",
               "CULTURESAFE_GROUNDING_DEFAULT_MODE": "off", "CULTURESAFE_RUNS_DIR": str(tmp)}
        envs = [{**env, "CULTURESAFE_INDEX_DIR": str(tmp / f"index-{n}")} for n in range(2)]
        with gateways(envs, tmp / "logs") as started:
            yield upstream, started


def _chat(gateway: Gateway, key: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})


@pytest.mark.slow
def test_a_key_gets_rpm_requests_across_both_processes_not_rpm_each(
    pair: tuple[FakeOpenAI, list[Gateway]],
) -> None:
    model, (first, second) = pair
    model.latency_s = 0.0
    answers = [(n % 2, _chat((first, second)[n % 2], "rate-key")) for n in range(2 * RPM)]
    statuses = Counter(r.status_code for _, r in answers)
    assert statuses == {200: RPM, 429: RPM}, statuses
    assert {n for n, r in answers if r.status_code == 200} == {0, 1}  # both served some
    refused = next(r for _, r in answers if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1


@pytest.mark.slow
def test_the_upstream_cap_holds_across_both_processes(
    pair: tuple[FakeOpenAI, list[Gateway]],
) -> None:
    model, (first, second) = pair
    model.latency_s = 2.0  # the first request holds the only slot long past the queue timeout
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(_chat, (first, second), ("cap-key", "cap-key")))
    model.latency_s = 0.0
    assert sorted(r.status_code for r in answers) == [200, 503], [r.text for r in answers]
    busy = next(r for r in answers if r.status_code == 503)
    assert busy.json()["error"]["code"] == "upstream_queue_timeout"
    assert busy.headers["Retry-After"] == "1"
    assert _chat(second, "cap-key").status_code == 200  # the slot was given back
