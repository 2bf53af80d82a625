"""``POST /evaluate`` against the gateway itself (no ``target_url``) under every key
configuration: the job calls its own gateway with a key the security layer accepts, so
every sample is answered and judged (a wrong key made each one a 401: "incomplete")."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from tests.eval.test_evaluate_route import NoPassages, serve
from tests.fakes.openai_server import FakeOpenAI


def _keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.txt"
    path.write_text("# chat keys\nfile-key-1\nfile-key-2\n", encoding="utf-8")
    return path


# (settings besides the upstream, the key to call /evaluate with)
CONFIGS: dict[str, tuple[dict[str, Any], str | None]] = {
    "inline keys": ({"api_keys": "inline-key"}, "inline-key"),
    "keys file and admin keys": ({"api_keys_file": "FILE", "admin_api_keys": "admin-key"},
                                 "admin-key"),
    "keys file only": ({"api_keys_file": "FILE"}, "file-key-2"),
    "admin keys only": ({"admin_api_keys": "admin-key"}, "admin-key"),
    "no keys": ({}, None),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_self_evaluation_works_under_every_key_configuration(
    name: str, mini_data: Path, tmp_path: Path, loopback: FakeOpenAI
) -> None:
    values, key = CONFIGS[name]
    values = {k: (str(_keys_file(tmp_path)) if v == "FILE" else v) for k, v in values.items()}
    settings = Settings(backend="upstream", upstream_base_url=loopback.base_url,
                        upstream_model="up", data_dir=mini_data, runs_dir=tmp_path / "runs",
                        index_dir=Path("unused"), **values)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with serve(create_app(settings, retriever=NoPassages())) as url, \
            httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        accepted = client.post("/evaluate", json={"per_kind": 1, "countries": ["china"],
                                                  "run_id": "self"})
        assert accepted.status_code == 202, accepted.text
        deadline = time.monotonic() + 120
        while (state := client.get("/evaluate/self").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
    assert state["status"] == "finished", state
    # knowledge, shuffled knowledge, safety, and one ordinary prompt naming China (asked
    # twice: grounded, then off)
    assert state["done"] == accepted.json()["total"] == 4
