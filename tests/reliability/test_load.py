"""Load and back-pressure against the real gateway on loopback (fast fault-server upstream).

The suite runs the load test reduced (500 requests at concurrency 32); ``bench/load.py``
runs the full size (5,000 at 64) with the same pass criteria: no 5xx, every request id
answered exactly once with the right content, and RSS stable between the first and last
windows of requests.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from app.main import create_app
from bench.load_client import run_load, upstream_duplicates
from retrieval.protocols import Retriever
from tests.fakes.loopback import Served, serve
from tests.fakes.openai_server import FakeOpenAI

from .conftest import assert_openai_error, gateway_settings, metric_value

MESSAGES = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def gateway(fault_server: FakeOpenAI, retriever: Retriever) -> Iterator[Served]:
    settings = gateway_settings(fault_server.base_url, max_concurrent_upstream=64,
                                read_timeout_s=60.0, upstream_queue_timeout_s=60.0)
    with serve(create_app(settings, retriever=retriever)) as served:
        yield served


async def test_load_500_requests_at_concurrency_32_lose_nothing(
    gateway: Served, fault_server: FakeOpenAI
) -> None:
    fault_server.reset()
    report = await run_load(gateway.url, total=500, concurrency=32, window=100)
    assert report.server_errors == 0, report.wrong[:5]
    assert report.wrong == []
    assert report.lost == 0 and report.duplicated == 0
    assert set(report.statuses) == {200}
    assert upstream_duplicates(fault_server.received, 500) == {}
    assert abs(report.rss_drift) <= 0.10, report.rows()
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=30).text
    assert metric_value(metrics, "culturesafe_grounding_requests_total",
                        mode="grounded", applied="true") > 0


async def test_backpressure_excess_requests_wait_then_get_503_never_pile_up(
    retriever: Retriever,
) -> None:
    """Two upstream slots, a slow upstream, twelve clients: the upstream never sees more
    than two at once; the others wait up to the queue timeout, then get 503."""
    with FakeOpenAI(delay_s=2.0) as upstream:
        settings = gateway_settings(upstream.base_url, max_concurrent_upstream=2,
                                    upstream_queue_timeout_s=0.3, read_timeout_s=30.0)
        with serve(create_app(settings, retriever=retriever)) as served:
            async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
                responses = await asyncio.gather(*(
                    http.post("/v1/chat/completions", json={
                        "model": "slow", "messages": MESSAGES, "stream": bool(i % 2)})
                    for i in range(12)))
                statuses = Counter(r.status_code for r in responses)
                assert set(statuses) <= {200, 503} and statuses[503] > 0
                assert 1 <= statuses[200] <= 2 * 2  # one wave, perhaps a second
                for r in responses:
                    if r.status_code == 503:
                        assert assert_openai_error(r.json())["code"] == "upstream_queue_timeout"
                        assert r.headers["Retry-After"] == "1"
                assert upstream.max_in_flight <= 2
                metrics = (await http.get("/metrics")).text
                assert metric_value(metrics, "culturesafe_upstream_errors_total",
                                    kind="overloaded") == statuses[503]
                after = await http.post("/v1/chat/completions",
                                        json={"model": "ok", "messages": MESSAGES})
                assert after.status_code == 200  # every slot was released
