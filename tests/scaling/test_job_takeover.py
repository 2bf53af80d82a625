"""Two gateway processes share a runs directory; the one running a ``POST /evaluate`` job is
killed with SIGKILL; the other takes the job over once its lease is free and finishes it.

Nothing lost, nothing stored twice, and nothing asked again beyond the bound of
tests/eval/test_kill_and_resume.py: only samples in flight at the kill, at most two asks
each (answer and verdict), one per target and judge worker.
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

from eval.run_log import SAMPLES_FILE, read_records
from tests.dataset_slices import tiny_dataset
from tests.fakes.openai_server import FakeOpenAI
from tests.gateway_processes import gateways

CONCURRENCY = 2


def _status(url: str, run_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/evaluate/{run_id}", timeout=30)
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


def _wait(url: str, run_id: str, *, done: int | None = None, timeout_s: float = 240) -> dict[
        str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        state = _status(url, run_id)
        if (done is not None and state["done"] >= done) or (
                done is None and state["status"] in ("finished", "incomplete", "failed")):
            return state
        assert time.monotonic() < deadline, f"job {run_id} did not get there: {state}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_job_of_a_sigkilled_gateway_is_finished_by_the_other(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (tmp_path / "data").mkdir()
    data = tiny_dataset(tmp_path / "data", 2, 3)
    with FakeOpenAI(latency_s=0.2) as loopback:
        envs = [{"CULTURESAFE_BACKEND": "upstream", "CULTURESAFE_RUNS_DIR": str(runs),
                 "CULTURESAFE_DATA_DIR": str(data), "CULTURESAFE_JOB_POLL_S": "0.5",
                 "CULTURESAFE_UPSTREAM_BASE_URL": loopback.base_url,
                 "CULTURESAFE_INDEX_DIR": str(tmp_path / f"index-{n}")} for n in range(2)]
        job = {"target_url": loopback.base_url, "target_model": "m", "run_id": "taken-over",
               "judge_url": loopback.base_url, "judge_model": "j", "condition": "plain",
               "per_kind": 6, "seed": 1, "concurrency": CONCURRENCY,
               "judge_concurrency": CONCURRENCY}
        with gateways(envs, tmp_path / "logs") as (first, second):
            accepted = httpx.post(f"{first.url}/evaluate", json=job, timeout=60)
            assert accepted.status_code == 202, accepted.text
            total = accepted.json()["total"]
            # The other process knows the job (from the shared files) and will not run it.
            twice = httpx.post(f"{second.url}/evaluate", json=job, timeout=60)
            assert twice.status_code == 400, twice.text
            assert twice.json()["error"]["param"] == "run_id"
            assert "already running" in twice.json()["error"]["message"]
            _wait(second.url, "taken-over", done=3)
            os.kill(first.proc.pid, signal.SIGKILL)
            first.proc.wait(30)
            stored_at_kill = {r["id"]: r for r in read_records(runs / "taken-over" / SAMPLES_FILE)}
            asked_at_kill = Counter(loopback.answered)
            assert 3 <= len(stored_at_kill) < total, "the kill did not land midway"
            final = _wait(second.url, "taken-over")
    assert final["status"] == "finished" and final["done"] == total
    records = list(read_records(runs / "taken-over" / SAMPLES_FILE))
    stored = Counter(r["id"] for r in records)
    manifest = json.loads((runs / "taken-over" / "manifest.json").read_text())
    assert set(stored) == set(manifest["sample_ids"]), "a sample was lost"
    assert set(stored.values()) == {1}, "a sample was stored twice"
    again = Counter(loopback.answered) - asked_at_kill
    for record in stored_at_kill.values():
        assert again[FakeOpenAI.prompt_key(record["messages"])] == 0, "re-asked a stored one"
    repeated = sum(n - 1 for n in loopback.answered.values() if n > 1)
    expected_dupes = sum(n - 1 for n in Counter(
        FakeOpenAI.prompt_key(r["messages"]) for r in records).values())
    assert repeated - expected_dupes <= 2 * (CONCURRENCY + CONCURRENCY)
