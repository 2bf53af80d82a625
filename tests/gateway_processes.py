"""Gateway processes as a deployment runs them: ``python -m uvicorn --factory
app.main:create_app``, configured by ``CULTURESAFE_*`` variables, on loopback, started all
at once and stopped at the end (tests of workers, replicas, crashes; the load benchmark).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.redis_server import free_port

REPO = Path(__file__).resolve().parents[1]
BASE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "CULTURESAFE_LOG_JSON": "false"}


@dataclass
class Gateway:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def _wait_healthy(gateway: Gateway, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert gateway.proc.poll() is None, gateway.log.read_text()[-4000:]
        assert time.monotonic() < deadline, gateway.log.read_text()[-4000:]
        try:
            if httpx.get(f"{gateway.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextmanager
def gateways(envs: Sequence[dict[str, str]], logs: Path,
             timeout_s: float = 300) -> Iterator[list[Gateway]]:
    """Start one ``uvicorn --factory app.main:create_app`` per env (all at once, so their
    start-ups overlap), wait until each answers ``/healthz``, stop them all at the end."""
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        started = []
        for n, env in enumerate(envs):
            port = free_port()
            log = logs / f"gateway-{n}.log"
            cmd = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
                   "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
            with log.open("ab") as out:
                proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                        env={**os.environ, **BASE_ENV, **env})
            stack.callback(_stop, proc)
            started.append(Gateway(f"http://127.0.0.1:{port}", proc, log))
        for gateway in started:
            _wait_healthy(gateway, timeout_s)
        yield started
