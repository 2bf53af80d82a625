"""API keys: missing, invalid and valid keys on every route class; health stays open;
``/evaluate`` takes admin keys only; keys from a file; the OpenAI SDK sees 401 as
``AuthenticationError``. The gateway runs in front of the loopback fake upstream."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.http.security import KeyRing
from app.main import create_app
from retrieval.protocols import Retriever
from tests.app.conftest import Gateway
from tests.fakes.openai_server import FakeOpenAI

CHAT_KEY = "sk-chat-9f8e7d6c5b4a"
OTHER_CHAT_KEY = "sk-chat-second-1234"
ADMIN_KEY = "sk-admin-0a1b2c3d4e5f"
MESSAGES = [{"role": "user", "content": "Is tipping expected in Japan?"}]

# One request per route class that needs a key (the fake upstream answers them all).
PROTECTED = [
    ("POST", "/v1/chat/completions", {"model": "fake-ok", "messages": MESSAGES}),
    ("POST", "/v1/chat", {"model": "fake-ok", "messages": MESSAGES}),
    ("GET", "/v1/models", None),
    ("GET", "/metrics", None),
]
PROTECTED_IDS = [path for _, path, _ in PROTECTED]



def _call(client: TestClient, method: str, path: str, body: Any, key: str | None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return client.request(method, path, json=body, headers=headers)


def _assert_openai_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=PROTECTED_IDS)
def test_protected_routes_refuse_missing_and_invalid_keys(
    gateway: Gateway, method: str, path: str, body: Any
) -> None:
    with gateway(api_keys=[CHAT_KEY]) as client:
        missing = _call(client, method, path, body, None)
        _assert_openai_error(missing, 401, "missing_api_key")
        assert missing.headers["www-authenticate"] == "Bearer"
        _assert_openai_error(_call(client, method, path, body, "sk-wrong"), 401, "invalid_api_key")
        _assert_openai_error(
            client.request(method, path, json=body, headers={"Authorization": CHAT_KEY}),
            401,
            "missing_api_key",
        )


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=PROTECTED_IDS)
def test_protected_routes_accept_chat_and_admin_keys(
    gateway: Gateway, method: str, path: str, body: Any
) -> None:
    with gateway(api_keys=[CHAT_KEY, OTHER_CHAT_KEY], admin_api_keys=[ADMIN_KEY]) as client:
        for key in (CHAT_KEY, OTHER_CHAT_KEY, ADMIN_KEY):
            response = _call(client, method, path, body, key)
            assert response.status_code == 200, (key, response.text)


def test_health_routes_stay_open(gateway: Gateway) -> None:
    with gateway(api_keys=[CHAT_KEY], admin_api_keys=[ADMIN_KEY]) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200


def test_evaluate_requires_an_admin_key_when_admin_keys_are_set(gateway: Gateway) -> None:
    with gateway(api_keys=[CHAT_KEY], admin_api_keys=[ADMIN_KEY]) as client:
        _assert_openai_error(client.post("/evaluate", json={}), 401, "missing_api_key")
        _assert_openai_error(
            _call(client, "POST", "/evaluate", {}, "sk-wrong"), 401, "invalid_api_key"
        )
        chat = _call(client, "POST", "/evaluate", {}, CHAT_KEY)
        _assert_openai_error(chat, 403, "admin_key_required")
        assert chat.json()["error"]["type"] == "permission_error"
        admitted = _call(client, "POST", "/evaluate", {}, ADMIN_KEY)
        assert admitted.status_code not in (401, 403), admitted.text


def test_evaluate_takes_chat_keys_without_admin_keys(gateway: Gateway) -> None:
    with gateway(api_keys=[CHAT_KEY]) as client:
        _assert_openai_error(client.post("/evaluate", json={}), 401, "missing_api_key")
        admitted = _call(client, "POST", "/evaluate", {}, CHAT_KEY)
        assert admitted.status_code not in (401, 403), admitted.text


def test_admin_keys_alone_protect_only_evaluate(gateway: Gateway) -> None:
    with gateway(admin_api_keys=[ADMIN_KEY]) as client:
        assert client.get("/v1/models").status_code == 200
        _assert_openai_error(client.post("/evaluate", json={}), 401, "missing_api_key")


def test_no_keys_configured_leaves_the_gateway_open(gateway: Gateway) -> None:
    with gateway() as client:
        for method, path, body in PROTECTED:
            assert _call(client, method, path, body, None).status_code == 200


def test_keys_file_keys_are_accepted(gateway: Gateway, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# team A\n{OTHER_CHAT_KEY}\n\n  {CHAT_KEY}  \n", encoding="utf-8")
    with gateway(api_keys_file=keys_file) as client:
        for key in (CHAT_KEY, OTHER_CHAT_KEY):
            assert _call(client, "GET", "/v1/models", None, key).status_code == 200
        assert _call(client, "GET", "/v1/models", None, "# team A").status_code == 401


def test_an_empty_keys_file_stops_the_start(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no key"):
        create_app(Settings(api_keys_file=keys_file, index_dir=Path("unused")))


def test_openai_sdk_sees_authentication_error(gateway: Gateway) -> None:
    with gateway(api_keys=[CHAT_KEY]) as client:
        bad = openai.OpenAI(
            base_url="http://testserver/v1", api_key="sk-wrong", http_client=client, max_retries=0
        )
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model="fake-ok", messages=MESSAGES)  # type: ignore[arg-type]
        assert caught.value.code == "invalid_api_key"
        good = openai.OpenAI(
            base_url="http://testserver/v1", api_key=CHAT_KEY, http_client=client, max_retries=0
        )
        answer = good.chat.completions.create(model="fake-ok", messages=MESSAGES)  # type: ignore[arg-type]
        assert answer.choices[0].message.content


def test_key_ring_labels_keys_without_holding_them() -> None:
    ring = KeyRing.from_settings(
        Settings(api_keys=[CHAT_KEY, OTHER_CHAT_KEY], admin_api_keys=[ADMIN_KEY])
    )
    assert ring.identify(OTHER_CHAT_KEY) == "chat:1"
    assert ring.identify(ADMIN_KEY) == "admin:0"
    assert ring.identify(CHAT_KEY[:-1]) is None
    assert CHAT_KEY.encode() not in b"".join(ring.chat + ring.admin)
    assert ring.check("/v1/models", f"bearer {CHAT_KEY}") == "chat:0"
    assert ring.check("/healthz", None) is None


def test_blank_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="empty or blank"):
        KeyRing.from_settings(Settings(api_keys=["  "]))


# --- the client's key stays here; the upstream key goes only upstream -------------------


def test_fake_upstream_sees_only_the_upstream_key_never_the_client_key(
    retriever: Retriever, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream_key = "sk-upstream-only-5e6f"
    with FakeOpenAI(models=("rec",)) as fake:
        settings = Settings(
            backend="upstream",
            upstream_base_url=fake.base_url,
            upstream_api_key=upstream_key,
            api_keys=[CHAT_KEY],
            index_dir=Path("unused"),
        )
        with TestClient(create_app(settings, retriever=retriever)) as client:
            body = {"model": "rec", "messages": MESSAGES}
            response = _call(client, "POST", "/v1/chat/completions", body, CHAT_KEY)
            assert response.status_code == 200
            assert upstream_key not in response.text
    seen = fake.headers  # of every request it received, /v1/models included
    assert seen and all(h["authorization"] == f"Bearer {upstream_key}" for h in seen)
    assert CHAT_KEY not in repr(seen)
    logged = "\n".join(r.getMessage() + repr(vars(r)) for r in caplog.records)
    assert CHAT_KEY not in logged and upstream_key not in logged


def test_cors_is_off_by_default_and_preflights_pass_without_a_key(gateway: Gateway) -> None:
    origin = {"Origin": "https://app.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST"}
    with gateway(api_keys=[CHAT_KEY]) as client:
        response = _call(client, "GET", "/v1/models", None, CHAT_KEY)
        assert "access-control-allow-origin" not in response.headers
    with gateway(api_keys=[CHAT_KEY], cors_origins=["https://app.example"]) as client:
        allowed = client.options("/v1/chat/completions", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = client.options(
            "/v1/chat/completions", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
        headers = {**origin, "Authorization": f"Bearer {CHAT_KEY}"}
        response = client.get("/v1/models", headers=headers)
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
