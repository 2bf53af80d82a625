"""Damaged index files and failing retrieval, seen through the service.

``tests/retrieval/`` proves that ``load_index`` detects each damaged file and that a save
is atomic; here the service itself starts on a damaged or half-swapped index directory,
and a retriever that fails at request time fails the request closed (503) by default.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from retrieval.models import Passage
from retrieval.protocols import Retriever
from tests.fakes.loopback import serve
from tests.fakes.openai_server import FakeOpenAI

from .conftest import assert_openai_error, gateway_settings

GROUNDED = {"model": "ok", "culturesafe": {"mode": "grounded"},
            "messages": [{"role": "user", "content": "Is tipping expected in Japan?"}]}


def _copy(index_dir: Path, retriever: Retriever, tmp_path: Path) -> Path:
    assert retriever is not None  # the session retriever has saved the index by now
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy)
    return copy


@pytest.mark.parametrize(("name", "damage"), [
    ("index.faiss", lambda data: data[: len(data) // 2]),
    ("metadata.json", lambda data: data.replace(b"Japan", b"Japon", 1)),
])
def test_service_refuses_to_start_on_a_damaged_index_with_a_clear_error(
    index_dir: Path, retriever: Retriever, tmp_path: Path, fault_server: FakeOpenAI,
    name: str, damage: Any,
) -> None:
    copy = _copy(index_dir, retriever, tmp_path)
    path = copy / name
    path.write_bytes(damage(path.read_bytes()))
    settings = gateway_settings(fault_server.base_url, index_dir=copy)
    with pytest.raises(Exception, match=r"corrupted or truncated") as caught, TestClient(
        create_app(settings)
    ):
        pass
    assert name in str(caught.value) and "rebuild" in str(caught.value)
    assert path.read_bytes() != (index_dir / name).read_bytes()  # never silently rebuilt


def test_service_starts_on_the_good_index_after_an_interrupted_write(
    index_dir: Path, retriever: Retriever, tmp_path: Path, fault_server: FakeOpenAI
) -> None:
    """A save cut short leaves a staging directory; one cut between its two renames leaves
    only the backup of the good index: the service starts on the good index either way."""
    copy = _copy(index_dir, retriever, tmp_path)
    staging = tmp_path / ".index.tmp-crashed"
    staging.mkdir()
    (staging / "index.faiss").write_bytes(b"half a new ind")
    copy.rename(tmp_path / ".index.old-0000cafe")
    settings = gateway_settings(fault_server.base_url, index_dir=copy)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/chat/completions", json=GROUNDED)
        assert response.status_code == 200
        assert response.json()["culturesafe"]["applied"] is True
    assert (copy / "manifest.json").is_file()


class BrokenRetriever:
    """A ``Retriever`` whose search fails, as a damaged index read at request time would."""

    def search(self, query: str, k: int, location: str | None = None) -> list[Passage]:
        raise OSError("index file vanished")


def test_retrieval_failure_fails_the_request_closed_by_default(fault_server: FakeOpenAI) -> None:
    fault_server.reset()
    app = create_app(gateway_settings(fault_server.base_url), retriever=BrokenRetriever())
    with serve(app) as served:
        response = httpx.post(f"{served.url}/v1/chat/completions", json=GROUNDED, timeout=30)
        assert response.status_code == 503
        assert assert_openai_error(response.json())["code"] == "retrieval_failed"
        assert fault_server.received == []
        off = {**GROUNDED, "culturesafe": {"mode": "off"}}
        assert httpx.post(f"{served.url}/v1/chat/completions", json=off,
                          timeout=30).status_code == 200


def test_retrieval_failure_served_ungrounded_when_fail_open(fault_server: FakeOpenAI) -> None:
    settings = gateway_settings(fault_server.base_url, retrieval_fail_open=True)
    with serve(create_app(settings, retriever=BrokenRetriever())) as served:
        response = httpx.post(f"{served.url}/v1/chat/completions", json=GROUNDED, timeout=30)
        assert response.status_code == 200
        assert response.json()["culturesafe"]["applied"] is False
        assert "retrieval" in response.headers["X-CultureSafe-Warning"].lower()
