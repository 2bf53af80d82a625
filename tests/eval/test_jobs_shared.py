"""Two job managers over one runs directory, as two workers or replicas on a shared
volume: one runner per job, status from any of them, takeover of an abandoned job.
Real loopback model server, real flock leases (the Redis ones: test_job_lease.py)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from eval.config import EvalConfigError, RunConfig
from eval.jobs import JobManager
from eval.run_log import SAMPLES_FILE, read_records
from tests.eval.conftest import endpoint
from tests.fakes.openai_server import FakeOpenAI


def _config(server: FakeOpenAI, data: Path, run_id: str) -> RunConfig:
    ep = endpoint(server, concurrency=1)
    return RunConfig(data_dir=data, target=ep, judge=ep, per_kind=3, countries=("china",),
                     run_id=run_id)


async def _until(predicate: object, timeout_s: float = 60) -> None:
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_job_runs_once_and_any_manager_answers_for_it(
    mini_data: Path, tmp_path: Path
) -> None:
    first, second = JobManager(tmp_path), JobManager(tmp_path)
    with FakeOpenAI(latency_s=0.05) as server:
        job = await first.submit(_config(server, mini_data, "shared"))
        with pytest.raises(EvalConfigError, match="already running"):
            await second.submit(_config(server, mini_data, "shared"))
        assert await second.resume_unfinished() == []  # it has a live holder
        await _until(lambda: (second.status("shared") or {}).get("done", 0) >= 1)
        seen = second.status("shared")
        assert seen is not None and seen["status"] == "running" and seen["total"] == job.total
        assert job.task is not None
        await job.task
        assert second.status("shared") == first.status("shared")
        assert (second.status("shared") or {})["status"] == "finished"
        assert await second.resume_unfinished() == []  # ended: nothing to resume
        # Ended, so a new POST of the same id may run it (here: nothing left to ask).
        again = await second.submit(_config(server, mini_data, "shared"))
        assert again.task is not None
        await again.task
        asked = Counter(server.answered)
    ids = Counter(r["id"] for r in read_records(tmp_path / "shared" / SAMPLES_FILE))
    assert len(ids) == job.total and set(ids.values()) == {1}
    assert max(asked.values()) == 1, "a prompt was asked twice"
    await first.shutdown()
    await second.shutdown()


async def test_an_abandoned_job_is_taken_over_and_finished_by_the_other_manager(
    mini_data: Path, tmp_path: Path
) -> None:
    first, second = JobManager(tmp_path), JobManager(tmp_path)
    with FakeOpenAI(latency_s=0.05) as server:
        job = await first.submit(_config(server, mini_data, "handover"))
        await _until(lambda: job.done >= 2)
        await first.shutdown()  # the holder goes away mid-run; its lease is released
        state = json.loads((tmp_path / "handover" / "job_state.json").read_text())
        assert state["status"] == "running"  # interrupted, not ended
        watcher = asyncio.create_task(second.watch(poll_s=0.05))
        await _until(lambda: (second.status("handover") or {}).get("status") == "finished")
        watcher.cancel()
    records = list(read_records(tmp_path / "handover" / SAMPLES_FILE))
    ids = Counter(r["id"] for r in records)
    assert len(ids) == job.total and set(ids.values()) == {1}, "lost or stored twice"
    await second.shutdown()
