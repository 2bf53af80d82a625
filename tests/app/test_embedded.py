"""The embedded backend end to end: llama.cpp's server (xllamacpp) in a child process with
the packaged SmolLM2-135M, behind the real gateway, called with the official client.

SmolLM2-135M is tiny: these tests assert on grounding metadata and the wire format, not
on the wisdom of its answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from app.backends.embedded import EmbeddedLlamaServer, default_gguf_path

pytestmark = pytest.mark.slow

TIP = "Is it rude to leave a tip for the waiter at a restaurant in Japan?"
PLAIN = "Write a Python function that adds two numbers."


@pytest.fixture
def client(embedded_gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{embedded_gateway}/v1", api_key="x", max_retries=0)


def test_embedded_server_starts_serves_and_stops() -> None:
    assert default_gguf_path().suffix == ".gguf"
    server = EmbeddedLlamaServer(ctx_size=512, threads=1, parallel=1, model_name="tiny")
    with server as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        assert httpx.get(f"{base_url}/models").json()["data"][0]["id"] == "tiny"
    assert server.base_url is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/models")


def test_cultural_question_is_grounded_with_the_right_citation(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="anything",
        messages=[{"role": "user", "content": TIP}],
        max_tokens=48,
        temperature=0,
    )
    resp = raw.parse()
    details = resp.to_dict()["culturesafe"]
    assert details["applied"] is True and details["mode"] == "grounded"
    assert details["citations"][0]["id"] == "starter-jp-001"
    assert details["citations"][0]["location"] == "Japan"
    assert "<culture_knowledge>" not in (resp.choices[0].message.content or "")
    assert resp.model == "smollm2-135m-instruct"
    assert raw.headers["X-CultureSafe-Grounded"] == "true"


def test_non_cultural_question_is_not_grounded(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="anything", messages=[{"role": "user", "content": PLAIN}], max_tokens=16
    )
    details = raw.parse().to_dict()["culturesafe"]
    assert details["applied"] is False and details["citations"] == []
    assert raw.headers["X-CultureSafe-Grounded"] == "false"


def test_streaming_from_the_embedded_model(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="anything",
            messages=[{"role": "user", "content": TIP}],
            max_tokens=32,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "culture_knowledge" not in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert (chunks[0].model_extra or {})["culturesafe"]["applied"] is True


def test_models_and_readiness(client: openai.OpenAI, embedded_gateway: str) -> None:
    assert [m.id for m in client.models.list()] == ["smollm2-135m-instruct"]
    assert httpx.get(f"{embedded_gateway}/readyz").status_code == 200


def test_embedded_server_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the gateway must not leave an orphaned model server behind."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from app.backends.embedded import EmbeddedLlamaServer\n"
        "s = EmbeddedLlamaServer(ctx_size=512, parallel=1)\n"
        "s.start()\n"
        "assert s._process is not None\n"
        "print(s._process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, str(script)], cwd=root, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; init reaps it
