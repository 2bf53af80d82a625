"""Quick route tests with ``TestClient`` (the lifespan runs) against the fake upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from retrieval.protocols import Retriever

from .conftest import upstream_settings

TIP = "Is it rude to leave a tip for the waiter at a restaurant in Japan?"


@pytest.fixture
def client(
    fake_upstream: tuple[str, list[dict[str, Any]]], retriever: Retriever
) -> Iterator[TestClient]:
    with TestClient(create_app(upstream_settings(fake_upstream[0]), retriever=retriever)) as c:
        yield c


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["upstream"] == "ok"


def test_simple_chat_api(client: TestClient) -> None:
    body = {"model": "knowledge", "messages": [{"role": "user", "content": TIP}]}
    response = client.post("/v1/chat", json={**body, "grounding": {"top_k": 2}})
    assert response.status_code == 200
    data = response.json()
    assert data["message"] == {
        "role": "assistant",
        "content": "Thanks for asking! In Japan you do not need to tip.",
    }
    assert data["grounding"] == {
        "applied": True,
        "mode": "grounded",
        "knowledge": "In Japan tipping is not customary [1].",
    }
    assert data["citations"][0]["id"] == "starter-jp-001" and len(data["citations"]) <= 2
    assert response.headers["X-CultureSafe-Grounded"] == "true"
    typo = client.post("/v1/chat", json={**body, "grounding": {"topk": 2}})
    assert typo.status_code == 400 and typo.json()["error"]["param"] == "grounding.topk"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, None),
        ({"json": {"messages": []}}, "messages"),
        ({"json": {"messages": [{"role": "user", "content": 3}]}}, "messages[0].content"),
        (
            {"json": {"messages": [{"role": "user"}], "stream_options": {"include_usage": True}}},
            "stream_options",
        ),
        ({"json": {"messages": [{"role": "user"}], "max_tokens": 0}}, "max_tokens"),
    ],
)
def test_bad_requests_are_400_in_openai_shape(
    client: TestClient, kwargs: dict[str, Any], param: str | None
) -> None:
    response = client.post("/v1/chat/completions", **kwargs)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_unknown_route_and_method_are_openai_shaped(client: TestClient) -> None:
    assert client.get("/nope").json()["error"]["type"] == "not_found_error"
    wrong = client.get("/v1/chat/completions")
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_metrics_count_routes_grounding_and_upstream(client: TestClient) -> None:
    client.get("/healthz")
    failing = {"model": "status-500", "messages": [{"role": "user", "content": TIP}]}
    client.post("/v1/chat/completions", json=failing)
    text = client.get("/metrics").text
    assert 'culturesafe_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'route="/v1/chat/completions",status="502"' in text
    assert 'culturesafe_grounding_requests_total{applied="true",mode="grounded"} 1.0' in text
    assert 'culturesafe_upstream_errors_total{kind="status"}' not in text  # 5xx is not a 4xx
    assert "culturesafe_retrieval_duration_seconds_count 1.0" in text


def test_two_apps_in_one_process_have_separate_metrics(
    fake_upstream: tuple[str, list[dict[str, Any]]], retriever: Retriever
) -> None:
    settings = upstream_settings(fake_upstream[0])
    with TestClient(create_app(settings, retriever=retriever)) as one:
        one.get("/healthz")
        with TestClient(create_app(settings, retriever=retriever)) as two:
            assert "/healthz" not in two.get("/metrics").text
        assert "/healthz" in one.get("/metrics").text


def test_openapi_document_declares_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"200", "400", "502", "503", "504"} <= set(responses)
