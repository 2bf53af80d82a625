"""Fixtures of the reliability suite: real servers on loopback, shared per session.

* ``fault_server``: the fake upstream of ``tests/fakes/openai_server.py``, one per session;
  the gateway runs under ``tests.fakes.loopback.serve`` (a real uvicorn on 127.0.0.1, in a
  thread of this process, its event loop exposed so a test can count its tasks).
* ``retriever``: the real retriever (embedder + FAISS) over the starter knowledge base.
* ``open_fds()`` / ``settle_fds()``: file descriptors of this process (``/proc/self/fd``),
  which holds the gateway, the fault server and the client: a leaked socket shows here.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from retrieval.protocols import Retriever
from tests.fakes.loopback import Served
from tests.fakes.openai_server import FakeOpenAI

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def gateway_settings(base_url: str, **overrides: Any) -> Settings:
    """Settings of a gateway in front of ``base_url`` (short timeouts, grounding off)."""
    values: dict[str, Any] = {
        "backend": "upstream", "upstream_base_url": base_url, "upstream_model": None,
        "read_timeout_s": 1.0, "connect_timeout_s": 1.0, "upstream_retries": 2,
        "grounding_default_mode": "off", "index_dir": Path("unused"), "log_json": False,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's index of the starter knowledge base is saved (copy, never edit)."""
    return tmp_path_factory.mktemp("index") / "index"


@pytest.fixture(scope="session")
def retriever(index_dir: Path) -> Retriever:
    """The real retriever over the starter knowledge base (built once per session)."""
    from retrieval.build import build_retriever

    built: Retriever = build_retriever(
        data_dir=None, index_dir=index_dir, embedder_model=None,
        threshold=Settings().similarity_threshold,
    )
    return built


@pytest.fixture(scope="session")
def fault_server() -> Iterator[FakeOpenAI]:
    """The fake upstream; the request's model picks the fault (``ok`` answers the echo)."""
    with FakeOpenAI(delay_s=3.0, models=("ok",)) as server:
        yield server


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settle_fds(baseline: int, wait_s: float = 10.0) -> int:
    """The fd count once it is back at ``baseline`` or below (or after ``wait_s``):
    sockets closed by a peer are released a moment later, on another thread's loop."""
    deadline = time.monotonic() + wait_s
    count = open_fds()
    while count > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
        count = open_fds()
    return count


def settle_tasks(served: Served, baseline: int, wait_s: float = 10.0) -> int:
    deadline = time.monotonic() + wait_s
    count = served.task_count()
    while count > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
        count = served.task_count()
    return count


def metric_value(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0.0 when absent)."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


def assert_openai_error(body: Any) -> dict[str, Any]:
    """``body`` is ``{"error": {"message", "type", "param", "code"}}``; returns the error."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert "Traceback" not in error["message"]
    return dict(error)
