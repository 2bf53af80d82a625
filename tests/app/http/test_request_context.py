"""Request ids (accepted, generated, returned, on errors too) and the logs: one JSON access
line per request with the id, and never a key or message content unless log_content."""

from __future__ import annotations

import json
import logging
import re

import pytest

from app.http.request_context import JsonFormatter, RequestIdFilter, request_id_from
from tests.app.conftest import Gateway

KEY = "sk-live-do-not-log-7c1e0f"
SECRET_CONTENT = "my-grandmother-zanzibar-recipe-4711"
MESSAGES = [{"role": "user", "content": f"Tell me about {SECRET_CONTENT} in India."}]
GENERATED = re.compile(r"^[0-9a-f]{32}$")



def test_given_request_id_is_returned(gateway: Gateway) -> None:
    with gateway() as client:
        response = client.get("/healthz", headers={"X-Request-ID": "trace-42.a:b"})
        assert response.headers["x-request-id"] == "trace-42.a:b"


def test_request_id_is_generated_when_absent_or_unsafe(gateway: Gateway) -> None:
    with gateway() as client:
        first = client.get("/healthz").headers["x-request-id"]
        second = client.get("/healthz").headers["x-request-id"]
        assert GENERATED.match(first) and GENERATED.match(second) and first != second
        for unsafe in ("two words", "x" * 129, "line\tbreak"):
            echoed = client.get("/healthz", headers={"X-Request-ID": unsafe})
            assert GENERATED.match(echoed.headers["x-request-id"])


def test_refused_and_streamed_responses_carry_the_id(gateway: Gateway) -> None:
    with gateway(api_keys=[KEY]) as client:
        refused = client.get("/v1/models", headers={"X-Request-ID": "refused-1"})
        assert refused.status_code == 401
        assert refused.headers["x-request-id"] == "refused-1"
        body = {"model": "fake-ok", "messages": MESSAGES, "stream": True}
        headers = {"Authorization": f"Bearer {KEY}", "X-Request-ID": "stream-1"}
        with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as stream:
            assert stream.headers["x-request-id"] == "stream-1"
            assert "[DONE]" in "".join(stream.iter_text())


def _formatted(records: list[logging.LogRecord]) -> list[str]:
    """Each record as the service writes it: through the JSON formatter."""
    formatter, stamp = JsonFormatter(), RequestIdFilter()
    for record in records:
        stamp.filter(record)
    return [formatter.format(record) for record in records]


def test_logs_hold_the_request_id_but_never_a_key_or_content(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with gateway(api_keys=[KEY]) as client:
        headers = {"Authorization": f"Bearer {KEY}", "X-Request-ID": "logged-1"}
        for path in ("/v1/chat/completions", "/v1/chat"):
            body = {"model": "fake-ok", "messages": MESSAGES}
            assert client.post(path, json=body, headers=headers).status_code == 200
        wrong = {"Authorization": "Bearer sk-guess-not-logged-either"}
        assert client.get("/v1/models", headers=wrong).status_code == 401
    lines = _formatted(caplog.records)
    everything = "\n".join(lines)
    for secret in (KEY, SECRET_CONTENT, "sk-guess-not-logged-either"):
        assert secret not in everything
    access = [json.loads(line) for line in lines if '"logger": "culturesafe.access"' in line]
    chat = [entry for entry in access if entry["request_id"] == "logged-1"]
    assert [(e["path"], e["status"], e["key_id"]) for e in chat] == [
        ("/v1/chat/completions", 200, "chat:0"),
        ("/v1/chat", 200, "chat:0"),
    ]
    assert chat[0]["messages"] == 1 and chat[0]["chars"] == len(MESSAGES[0]["content"])
    assert any(e["status"] == 401 and e["key_id"] is None for e in access)


def test_log_content_switch_logs_the_messages(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with gateway(log_content=True) as client:
        body = {"model": "fake-ok", "messages": MESSAGES}
        assert client.post("/v1/chat/completions", json=body).status_code == 200
    assert SECRET_CONTENT in "\n".join(_formatted(caplog.records))


def test_one_log_line_per_request_and_none_from_the_upstream_client(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx's own INFO line per upstream call is off: our access line covers it."""
    caplog.set_level(logging.INFO)
    with gateway() as client:
        body = {"model": "fake-ok", "messages": MESSAGES, "culturesafe": {"mode": "off"}}
        assert client.post("/v1/chat/completions", json=body).status_code == 200
    # (the TestClient's own transport logs as "httpx2": that is the test's client, not ours)
    assert not [r for r in caplog.records if r.name.split(".")[0] == "httpx"]
    assert [r.name for r in caplog.records if r.name == "culturesafe.access"] == [
        "culturesafe.access"
    ]


def test_request_id_from_keeps_only_safe_tokens() -> None:
    assert request_id_from("abc-123") == "abc-123"
    assert GENERATED.match(request_id_from(None))
    assert GENERATED.match(request_id_from('"}, "level": "error'))


def test_json_formatter_writes_one_object_with_extras() -> None:
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "WARNING", "msg": "slow %s", "args": ("upstream",),
         "request_id": "r-1", "duration_ms": 12.5, "color_message": "\x1b[33mslow\x1b[0m"}
    )  # fmt: skip
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "slow upstream"
    assert entry["level"] == "warning" and entry["request_id"] == "r-1"
    assert entry["duration_ms"] == 12.5 and "color_message" not in entry
