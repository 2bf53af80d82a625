"""``POST /evaluate`` survives a SIGKILL of the service: the job resumes on restart and ends
with exactly one stored result per item, and the metrics of an uninterrupted run.

The service runs as in production (``python -m uvicorn --factory app.main:create_app``,
configured by ``CULTURESAFE_*``) in a subprocess; the target and the judge are the
fake upstream of ``tests.fakes.openai_server`` (a real HTTP server in this process).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dataset_slices import tiny_dataset
from tests.fakes.openai_server import FakeOpenAI
from tests.gateway_processes import gateways


def _wait_status(url: str, run_id: str, done: int | None = None) -> dict[str, Any]:
    """Poll ``GET /evaluate/{id}`` until ``done`` samples (or the end of the job)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        state: dict[str, Any] = httpx.get(f"{url}/evaluate/{run_id}", timeout=30).json()
        if done is not None and state.get("done", 0) >= done:
            return state
        if done is None and state.get("status") in ("finished", "incomplete", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {run_id} did not get there: {state}")


def _stored(runs: Path, run_id: str) -> Counter[str]:
    lines = (runs / run_id / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    return Counter(json.loads(line)["id"] for line in lines)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_evaluate_job_killed_with_sigkill_resumes_to_the_same_metrics(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    env = {
        "CULTURESAFE_BACKEND": "upstream", "CULTURESAFE_RUNS_DIR": str(runs),
        "CULTURESAFE_DATA_DIR": str(tiny_dataset(tmp_path / "data", 2, 3)),
        "CULTURESAFE_INDEX_DIR": str(tmp_path / "index"), "CULTURESAFE_LOG_JSON": "false",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
    }
    logs = tmp_path / "logs"
    with FakeOpenAI(latency_s=0.25) as loopback:
        env["CULTURESAFE_UPSTREAM_BASE_URL"] = loopback.base_url
        job: dict[str, Any] = {
            "target_url": loopback.base_url, "target_model": "m", "judge_url": loopback.base_url,
            "judge_model": "j", "condition": "plain", "per_kind": 6, "seed": 3,
            "concurrency": 1, "judge_concurrency": 1,
        }
        with gateways([env], logs) as (service,):
            url, proc = service.url, service.proc
            accepted = httpx.post(f"{url}/evaluate", json={**job, "run_id": "crashed"},
                                  timeout=60)
            assert accepted.status_code == 202, accepted.text
            total = accepted.json()["total"]
            assert total >= 6
            _wait_status(url, "crashed", done=2)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        interrupted = sum(_stored(runs, "crashed").values())
        assert 2 <= interrupted < total, "the kill did not land midway"
        with gateways([env], logs) as (service,):
            url = service.url
            resumed = _wait_status(url, "crashed")
            clean = httpx.post(f"{url}/evaluate", json={**job, "run_id": "uninterrupted"},
                               timeout=60)
            assert clean.status_code == 202, clean.text
            uninterrupted = _wait_status(url, "uninterrupted")
    assert resumed["status"] == "finished" and resumed["done"] == total
    stored = _stored(runs, "crashed")
    manifest = json.loads((runs / "crashed" / "manifest.json").read_text())
    assert set(stored) == set(manifest["sample_ids"]) and len(stored) == total
    assert set(stored.values()) == {1}, "a sample was stored twice"
    assert uninterrupted["status"] == "finished"
    assert resumed["metrics"] == uninterrupted["metrics"]
