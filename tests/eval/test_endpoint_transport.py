"""The endpoints' connection pool (aiohttp under the official ``openai`` client), against the
real loopback model server: shared by target and judge, retried on 5xx, and only used
where no proxy from the environment applies."""

from __future__ import annotations

import asyncio

import pytest

from eval.endpoint import Endpoint, EndpointConfig, aiohttp_applies, pooled_transport
from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "In Japan, is tipping customary?"}]


async def test_two_endpoints_share_one_pool_and_closing_one_leaves_it_open() -> None:
    with FakeOpenAI() as server:
        pool = pooled_transport(8)
        target = Endpoint(EndpointConfig(base_url=server.base_url, model="m", concurrency=4),
                          transport=pool)
        judge = Endpoint(EndpointConfig(base_url=server.base_url, model="j", concurrency=4),
                         transport=pool)
        try:
            answers = await asyncio.gather(
                *(ep.complete(MESSAGES, max_tokens=8) for ep in (target, judge) * 10))
            await target.aclose()  # the judge keeps working on the shared pool
            after = await judge.complete(MESSAGES, max_tokens=8)
        finally:
            await judge.aclose()
            await pool.aclose()
    assert len({a.text for a in answers}) == 1 and after.text == answers[0].text
    assert server.requests == 21


async def test_a_5xx_is_retried_by_the_client_over_the_pool() -> None:
    with FakeOpenAI() as server:
        server.fail(503, times=2)
        ep = Endpoint(EndpointConfig(base_url=server.base_url, model="m", max_retries=2))
        try:
            done = await ep.complete(MESSAGES, max_tokens=8)
        finally:
            await ep.aclose()
    assert done.text and server.requests == 3


def test_only_plain_http_without_a_proxy_gets_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert aiohttp_applies("http://127.0.0.1:8000/v1")
    assert not aiohttp_applies("https://api.example.com/v1")
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    assert not aiohttp_applies("http://models.example/v1")
