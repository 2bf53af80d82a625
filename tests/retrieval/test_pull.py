"""``data pull`` against a real loopback HTTP server serving copies of the dataset files.

The server is the only fake: it speaks real HTTP (with Range support) and can be told to
drop a connection midway, corrupt the bytes, ignore Range or answer 404, which is how the
upstream faults are injected.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from retrieval.data_cli import data_app
from retrieval.errors import ChecksumMismatchError, DataPullError
from retrieval.knowledge_base import load_knowledge_base
from retrieval.pull import load_manifest, pull_dataset
from tests.dataset_slices import DATASET


@dataclass
class LoopbackState:
    root: Path
    mode: str = "ok"  # ok | drop | corrupt | norange | missing
    drops_left: int = 0
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: LoopbackState  # set on a subclass per server

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request log lines."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        state = self.state
        name = unquote(self.path.rsplit("/", 1)[-1])
        requested = self.headers.get("Range")
        state.requests.append((name, requested))
        path = state.root / name
        if state.mode == "missing" or not self.path.startswith("/mirror/") or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        if state.mode == "corrupt":
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        start = 0
        if requested and state.mode != "norange":
            start = int(requested.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.mode == "drop" and state.drops_left > 0:
            state.drops_left -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True  # the client sees a short body
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def upstream_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The five files under their upstream names, copied at test time (never into the repo)."""
    root = tmp_path_factory.mktemp("upstream")
    for entry in load_manifest():
        shutil.copyfile(DATASET / entry.name, root / entry.upstream)
    return root


@pytest.fixture
def loopback(upstream_copy: Path) -> Iterator[tuple[str, LoopbackState]]:
    state = LoopbackState(root=upstream_copy)
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mirror", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_matches_the_dataset_checksums() -> None:
    lines = (DATASET / "SHA256SUMS").read_text().splitlines()
    sums = {name: digest for digest, name in (line.split() for line in lines)}
    entries = load_manifest()
    assert {e.name: e.sha256 for e in entries} == sums
    assert all((DATASET / e.name).stat().st_size == e.size for e in entries)


def test_pull_downloads_verifies_and_skips_present_files(
    loopback: tuple[str, LoopbackState], tmp_path: Path
) -> None:
    url, state = loopback
    results = pull_dataset(tmp_path, base_url=url, show_progress=False)
    assert [r.status for r in results] == ["downloaded"] * 5
    for entry in load_manifest():
        assert _sha256(tmp_path / entry.name) == entry.sha256
    assert not list(tmp_path.glob("*.part"))
    assert len(load_knowledge_base(tmp_path)) == 1126
    state.requests.clear()
    again = pull_dataset(tmp_path, base_url=url, show_progress=False)
    assert [r.status for r in again] == ["present"] * 5
    assert state.requests == []


def test_pull_resumes_with_range_after_loopback_server_drops_connection(
    loopback: tuple[str, LoopbackState], tmp_path: Path
) -> None:
    url, state = loopback
    state.mode, state.drops_left = "drop", 1
    with pytest.raises(DataPullError, match="run the command again to resume"):
        pull_dataset(tmp_path, base_url=url, countries=["china"], retries=0, show_progress=False)
    part = tmp_path / "china.json.part"
    kept = part.stat().st_size
    assert 0 < kept < (DATASET / "china.json").stat().st_size
    assert not (tmp_path / "china.json").exists()

    (result,) = pull_dataset(tmp_path, base_url=url, countries=["China"], show_progress=False)
    assert result.status == "resumed"
    assert state.requests[-1][1] == f"bytes={kept}-"
    assert result.bytes_downloaded == (DATASET / "china.json").stat().st_size - kept
    assert _sha256(tmp_path / "china.json") == _sha256(DATASET / "china.json")
    assert not part.exists()


def test_pull_retries_a_dropped_connection_within_one_call(
    loopback: tuple[str, LoopbackState], tmp_path: Path
) -> None:
    url, state = loopback
    state.mode, state.drops_left = "drop", 2
    (result,) = pull_dataset(tmp_path, base_url=url, countries=["spain"], show_progress=False)
    assert result.status == "resumed"
    assert [r for _, r in state.requests][0] is None
    assert all(r is not None and r.startswith("bytes=") for _, r in state.requests[1:])
    assert _sha256(tmp_path / "spain.json") == _sha256(DATASET / "spain.json")


def test_pull_rejects_corrupted_bytes_from_loopback_server(
    loopback: tuple[str, LoopbackState], tmp_path: Path
) -> None:
    url, state = loopback
    state.mode = "corrupt"
    with pytest.raises(ChecksumMismatchError, match="india.json: checksum mismatch") as caught:
        pull_dataset(tmp_path, base_url=url, countries=["india"], show_progress=False)
    assert caught.value.expected == _sha256(DATASET / "india.json")
    assert list(tmp_path.iterdir()) == []  # neither the file nor the .part remains


def test_pull_restarts_when_loopback_server_ignores_range(
    loopback: tuple[str, LoopbackState], tmp_path: Path
) -> None:
    url, state = loopback
    state.mode = "norange"
    (tmp_path / "thailand.json.part").write_bytes(b"stale bytes from another download")
    (tmp_path / "ukraine.json").write_bytes(b"a file with the wrong checksum")
    results = pull_dataset(
        tmp_path, base_url=url, countries=["thailand", "ukraine"], show_progress=False
    )
    assert [r.status for r in results] == ["downloaded", "downloaded"]  # restarted from 0
    for name in ("thailand.json", "ukraine.json"):
        assert _sha256(tmp_path / name) == _sha256(DATASET / name)


def test_pull_reports_http_errors_and_unreachable_hosts(
    loopback: tuple[str, LoopbackState], tmp_path: Path
) -> None:
    url, state = loopback
    state.mode = "missing"
    with pytest.raises(DataPullError, match=r"china.json: HTTP 404 Not Found from http://"):
        pull_dataset(tmp_path, base_url=url, countries=["china"], show_progress=False)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(DataPullError, match="china.json: download from .* failed"):
        pull_dataset(tmp_path, base_url=closed, countries=["china"], show_progress=False)
    with pytest.raises(DataPullError, match="unknown country atlantis; available: China"):
        pull_dataset(tmp_path, base_url=url, countries=["atlantis"], show_progress=False)


def test_cli_pull_then_check(loopback: tuple[str, LoopbackState], tmp_path: Path) -> None:
    url, _ = loopback
    dest = tmp_path / "data"
    args = ["pull", "--url", url, "--dest", str(dest), "--country", "china"]
    result = CliRunner().invoke(data_app, [*args, "--country", "spain"])
    assert result.exit_code == 0, result.output
    assert "downloaded" in result.output and "2 file(s) verified" in result.output
    assert sorted(p.name for p in dest.iterdir()) == ["china.json", "spain.json"]

    checked = CliRunner().invoke(data_app, ["check", str(dest)])
    assert checked.exit_code == 0, checked.output
    assert "199" in checked.output and "215" in checked.output


def test_cli_pull_failure_is_one_clear_line(
    loopback: tuple[str, LoopbackState], tmp_path: Path
) -> None:
    url, state = loopback
    state.mode = "corrupt"
    args = ["pull", "--url", url, "--dest", str(tmp_path), "--country", "china", "--no-progress"]
    result = CliRunner().invoke(data_app, args)
    assert result.exit_code == 1
    assert "error: china.json: checksum mismatch" in result.output
    assert "Traceback" not in result.output


def test_cli_check_reports_bad_knowledge_base(tmp_path: Path) -> None:
    (tmp_path / "mine.jsonl").write_text('{"id": "a-1", "location": "X"}\n')
    result = CliRunner().invoke(data_app, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'mine.jsonl'}, line 1, item 'a-1', field description" in (
        result.output
    )
    skipped = CliRunner().invoke(data_app, ["check", str(DATASET / "china.json")])
    assert skipped.exit_code == 0 and "content hash" in skipped.output
