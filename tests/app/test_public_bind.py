"""No open gateway on a public bind: a non-loopback host without chat keys refuses to
start, with a message naming the settings, unless CULTURESAFE_ALLOW_UNAUTHENTICATED=true.
Loopback stays keyless (``make serve``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings, is_loopback

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_key(host: str) -> None:
    assert is_loopback(host)
    assert Settings(host=host).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.9", "gateway.local"])
def test_a_public_bind_without_chat_keys_refuses_to_start(host: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(host=host)
    message = str(refused.value)
    assert "CULTURESAFE_API_KEYS" in message and "CULTURESAFE_ALLOW_UNAUTHENTICATED" in message
    # Admin keys alone leave the chat routes open: still refused.
    with pytest.raises(ValidationError):
        Settings(host=host, admin_api_keys="admin")
    keys = tmp_path / "keys"
    keys.write_text("k\n")
    assert Settings(host=host, api_keys="k").api_keys
    assert Settings(host=host, api_keys_file=keys).api_keys_file == keys
    assert Settings(host=host, allow_unauthenticated=True).allow_unauthenticated


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CULTURESAFE_")}
    return subprocess.run([sys.executable, "-c", "from app.cli import main; main()", "serve",
                           *args], env={**clean, **env}, cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)


def test_serve_on_the_images_bind_without_a_key_exits_with_the_setting_named() -> None:
    # The image sets CULTURESAFE_HOST=0.0.0.0 (tests/deploy/test_dockerfile.py).
    done = _serve({"CULTURESAFE_HOST": "0.0.0.0"})
    assert done.returncode == 2, done.stderr
    assert "CULTURESAFE_API_KEYS" in done.stderr and "Traceback" not in done.stderr
    flag = _serve({}, "--host", "0.0.0.0")
    assert flag.returncode == 2 and "CULTURESAFE_ALLOW_UNAUTHENTICATED" in flag.stderr
