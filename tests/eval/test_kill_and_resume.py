"""Kill the CLI with SIGKILL mid-run, re-run the same command: nothing asked twice, nothing
lost. The loopback server (in this process) outlives the killed CLI and counts prompts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from eval.run_log import SAMPLES_FILE, read_records
from tests.fakes.openai_server import FakeOpenAI

CONCURRENCY = 3


def cli(server: FakeOpenAI, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "from eval.cli import app; app()", "run",
            "--data", str(data), "--target-url", server.base_url, "--judge-url",
            server.base_url, "--per-kind", "5", "--countries", "china,spain",
            "--out", str(out), "--run-id", "killed",
            "--concurrency", str(CONCURRENCY), "--judge-concurrency", str(CONCURRENCY),
            "--max-retries", "0"]


def test_sigkill_midway_then_resume_loses_nothing_and_repeats_nothing(
    mini_data: Path, tmp_path: Path
) -> None:
    model = FakeOpenAI(latency_s=0.02)  # slow enough to be killed midway
    log = tmp_path / "killed" / SAMPLES_FILE
    with model as server:
        proc = subprocess.Popen(cli(server, mini_data, tmp_path), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=Path(__file__).parents[2])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and log.read_bytes().count(b"\n") >= 10:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = {r["id"]: r for r in read_records(log)}
        asked_before = Counter(model.answered)

        done = subprocess.run(cli(server, mini_data, tmp_path), capture_output=True,
                              text=True, cwd=Path(__file__).parents[2], check=False)
        assert done.returncode == 0, done.stderr[-2000:]

    records = list(read_records(log))
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "a finished sample was stored twice"
    assert set(before) < set(ids)
    assert all(r["status"] == "done" for r in records)
    total = 2 * (5 + 5 + 5 + 5)  # per country: knowledge, shuffled, safety, ordinary
    assert sum(r["kind"] == "ordinary" for r in records) == 10
    assert len(records) == total, "a sample was lost"
    # Samples finished before the kill were not asked again after it.
    again = Counter(model.answered) - asked_before
    for record in before.values():
        assert again[FakeOpenAI.prompt_key(record["messages"])] == 0
    # Only samples in flight at the kill were asked again: one per worker (target workers
    # plus judge workers), and each of those at most twice (its answer and its verdict,
    # when both came back but the record was not yet written).
    repeated = sum(n - 1 for n in model.answered.values() if n > 1)
    expected_dupes = sum(n - 1 for n in Counter(
        FakeOpenAI.prompt_key(r["messages"]) for r in records).values())
    workers = CONCURRENCY + CONCURRENCY
    assert repeated - expected_dupes <= 2 * workers
