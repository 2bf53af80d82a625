"""The benchmark scripts run from a clean checkout, at a tiny size, and print their tables.

No timing is asserted: this only keeps ``bench/`` working (issue 7: "CI may run each
benchmark in a tiny size"). The scripts run as a user runs them, in a subprocess, against
the real dataset and their real loopback upstreams.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.knowledge_base import ADACULTURESAFE_DIR
from tests.dataset_slices import tiny_dataset

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / ADACULTURESAFE_DIR


def _run(args: list[str], timeout: int = 900) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


@pytest.mark.slow
def test_eval_throughput_prints_its_tables() -> None:
    out = _run(["bench/eval_throughput.py", "--data", str(DATA), "--per-kind", "2",
                "--concurrency", "2", "--resume-per-kind", "4"])
    assert "| concurrency | samples |" in out
    assert "resume of a 90%-done run" in out


@pytest.mark.slow
def test_gateway_overhead_prints_every_mode(tmp_path: Path) -> None:
    # a slice of the dataset: the full KB takes minutes to index and fit the gate on 2 cores
    data = tiny_dataset(tmp_path / "data", countries=5, per_country=3)
    out = _run(["bench/gateway_overhead.py", "--requests", "4", "--rounds", "1",
                "--concurrency", "1", "--data-dir", str(data),
                "--index-dir", str(tmp_path / "index")])
    rows = {line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")}
    assert {"direct", "off", "inject", "grounded"} <= rows
    assert "Gateway RSS" in out
    assert "bench/gateway_overhead.py" in out  # the header names the command
