"""The run store: ``runs/<run_id>/manifest.json`` + ``samples.jsonl``, one line per sample.

Each finished sample is appended as one JSON line and made durable (write, flush, fsync)
before it counts as done. Concurrent appends are group-committed: lines that finish while
an fsync is running are written together by the next one, so durability does not cap the
throughput. A line that a crash cut short is dropped (and truncated away) on reopen.
Resuming reads only the ``id`` and ``status`` at the head of each line.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SAMPLES_FILE = "samples.jsonl"
MANIFEST_FILE = "manifest.json"
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_HEAD = re.compile(rb'^\{"id": ("(?:[^"\\]|\\.)*"), "status": "(\w+)"')


def valid_run_id(run_id: str) -> bool:
    """Run ids name a directory: letters, digits, ``._-``; no separators, no ``..``."""
    return re.match(RUN_ID_PATTERN, run_id) is not None and ".." not in run_id


def encode_record(record: dict[str, Any]) -> bytes:
    """One JSON line with ``id`` and ``status`` first (the resume scan reads only those)."""
    head = {"id": record["id"], "status": record["status"]}
    body = {k: v for k, v in record.items() if k not in head}
    return (json.dumps({**head, **body}, ensure_ascii=False) + "\n").encode()


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON, never leaving a half-written file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _good_length(path: Path) -> int:
    """The length of the file up to its last newline (a crash may leave a partial line)."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb") as fh:
        pos = size
        while pos > 0:
            step = min(65536, pos)
            fh.seek(pos - step)
            chunk = fh.read(step)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                return pos - step + cut + 1
            pos -= step
    return 0


def scan_status(path: Path) -> dict[str, str]:
    """``{sample id: status of its last line}``, reading only the head of each line."""
    status: dict[str, str] = {}
    if not path.exists():
        return status
    with path.open("rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break  # a partial last line: the sample was not finished
            m = _HEAD.match(line)
            if m:
                raw = m.group(1)
                # Ids without escapes (all of them in practice) need no JSON decoding.
                key = raw[1:-1].decode() if b"\\" not in raw else json.loads(raw)
                status[key] = m.group(2).decode()
    return status


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete record, in order (later lines for the same id supersede earlier)."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def latest_records(path: Path) -> dict[str, dict[str, Any]]:
    """The last record of each sample id."""
    return {r["id"]: r for r in read_records(path)}


class SampleLog:
    """Appends records durably; ``await append(record)`` returns once it is on disk."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / SAMPLES_FILE
        if self.path.exists():
            good = _good_length(self.path)
            if good != self.path.stat().st_size:
                os.truncate(self.path, good)  # drop the partial line a crash left
        self._fh = self.path.open("ab")
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, record: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((encode_record(record), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._write, b"".join(line for line, _ in batch))
            except OSError as exc:
                for _, fut in batch:
                    fut.set_exception(exc)
            else:
                for _, fut in batch:
                    fut.set_result(None)

    def _write(self, data: bytes) -> None:
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()
