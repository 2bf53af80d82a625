"""Fixtures of the evaluation tests: a small slice of the real dataset, loopback servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.endpoint import EndpointConfig
from tests.dataset_slices import DATASET
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture(scope="session")
def mini_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real descriptions per country (AdaCultureSafe format), in a temp directory."""
    if not DATASET.is_dir():
        pytest.skip(f"dataset not found at {DATASET}")
    out = tmp_path_factory.mktemp("mini_data")
    for src in sorted(DATASET.glob("*.json")):
        items = json.loads(src.read_text(encoding="utf-8"))
        keep = dict(list(items.items())[:3])
        (out / src.name).write_text(json.dumps(keep, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.fixture
def loopback() -> Iterator[FakeOpenAI]:
    """A deterministic OpenAI-compatible server on 127.0.0.1 that supports JSON schema."""
    with FakeOpenAI() as server:
        yield server


def endpoint(server: FakeOpenAI, model: str = "m", **extra: object) -> EndpointConfig:
    """An endpoint config for a loopback server (no client retries unless asked)."""
    return EndpointConfig.model_validate(
        {"base_url": server.base_url, "model": model, "max_retries": 0, "concurrency": 4,
         **extra}
    )
