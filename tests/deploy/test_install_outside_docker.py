"""The image's build and start, replayed outside Docker (no engine on these machines).

The Dockerfile is read, not paraphrased: its builder ``COPY`` lines assemble the build
context in a temporary directory, its ``RUN`` lines run there in a fresh virtualenv (the
paths /opt/venv, /src and /data mapped into tmp; torch from pip's own configuration, i.e.
the on-disk CPU wheel, instead of PyTorch's index), its runtime ``ENV`` is the
environment, and its ``CMD`` starts the service, which must answer ``/healthz``. If the
Dockerfile, scripts/install.sh or the README's install drift apart, this fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

Instructions = list[tuple[int, str, str]]
START_TIMEOUT_S = 300
# What .dockerignore keeps out of the build context's packages.
IGNORED = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env_pairs(args: str) -> dict[str, str]:
    pairs = re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)', args)
    return {name: value.strip('"') for name, value in pairs}


@pytest.mark.slow
def test_dockerfile_install_and_start_work_outside_docker(
    instructions: Instructions, repo_root: Path, tmp_path: Path
) -> None:
    venv, src, data = tmp_path / "venv", tmp_path / "src", tmp_path / "data"
    paths = {"/opt/venv": str(venv), "/src": str(src), "/data": str(data)}

    def mapped(text: str) -> str:
        for image_path, local in paths.items():
            text = re.sub(rf"(?<![\w/.]){re.escape(image_path)}(?=/|\s|:|$)", local, text)
        return text

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CULTURESAFE_", "VIRTUAL_ENV", "PYTHON"))
    }
    env["TORCH_INDEX_URL"] = ""  # pip's configuration: the on-disk CPU wheel
    env["PIP_NO_COMPILE"] = "1"  # the same packages, minus minutes of byte-compiling
    # The base image's `python` is 3.11: so is the interpreter running the tests.
    image_bin = tmp_path / "image-bin"
    image_bin.mkdir()
    (image_bin / "python").symlink_to(sys.executable)
    env["PATH"] = f"{image_bin}{os.pathsep}{env.get('PATH', '')}"
    builder = [(k, a) for s, k, a in instructions if s == 0]
    runtime = [(k, a) for s, k, a in instructions if s == max(s for s, _, _ in instructions)]
    started = time.monotonic()
    for keyword, args in builder:
        if keyword == "ENV":
            for name, value in _env_pairs(args).items():
                env[name] = mapped(value.replace("$PATH", env["PATH"]))
        elif keyword == "COPY":
            *sources, destination = args.split()
            target = src / destination
            for source in sources:
                origin = repo_root / source.rstrip("/")
                if origin.is_dir():
                    shutil.copytree(
                        origin, src / destination.rstrip("/"), dirs_exist_ok=True, ignore=IGNORED
                    )
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
        elif keyword == "RUN":
            command = mapped(re.sub(r"--mount=\S+\s+", "", args))
            subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=src if src.exists() else tmp_path,
                env=env,
                check=True,
                timeout=1200,
            )
    install_s = time.monotonic() - started
    assert (venv / "bin" / "culturesafe").is_file()
    assert any((data / "index").iterdir()), "the starter index was not built"
    exported = list((data / "models" / "embedder").rglob("model.onnx"))
    assert len(exported) == 2, f"the fp32 and int8 query embedders were not exported: {exported}"

    port = _free_port()
    run_env = {k: v for k, v in env.items() if k != "TORCH_INDEX_URL"}
    for keyword, args in runtime:
        if keyword == "ENV":
            run_env.update(
                {k: mapped(v.replace("$PATH", env["PATH"])) for k, v in _env_pairs(args).items()}
            )
    # The image listens on 0.0.0.0:8000; here, loopback and a free port.
    run_env |= {"CULTURESAFE_HOST": "127.0.0.1", "CULTURESAFE_PORT": str(port)}
    (data / "runs").mkdir(parents=True, exist_ok=True)
    cmd = json.loads([a for k, a in runtime if k == "CMD"][-1])
    server = subprocess.Popen(cmd, cwd=tmp_path, env=run_env, start_new_session=True)
    try:
        body = _wait_for_health(port, server)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert body["status"] == "ok"
    total_s = time.monotonic() - started
    # Reported (with -s or -rA) for the README's numbers; not asserted.
    sys.stdout.write(f"\ninstall {install_s:.0f} s, install + start {total_s:.0f} s\n")


def _wait_for_health(port: int, server: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the service exited with {server.returncode} before /healthz answered")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                result: dict[str, object] = json.loads(r.read())
                return result
        except OSError:
            time.sleep(1)
    pytest.fail(f"/healthz did not answer within {START_TIMEOUT_S} s")
