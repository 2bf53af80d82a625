"""Download the public AdaCultureSafe release: checksummed, resumable, atomic.

The manifest shipped beside the starter knowledge base lists each file's upstream name,
local name, size and SHA-256 (upstream commit bc16669). A download goes to ``NAME.part``;
an interrupted one resumes from there with an HTTP Range request; only a file whose
checksum matches is moved into place with :func:`os.replace`, so ``DEST/NAME`` is either
absent or complete and verified.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from retrieval.errors import ChecksumMismatchError, DataPullError

DEFAULT_BASE_URL = (
    "https://raw.githubusercontent.com/khk-abc/AdaCultureSafe/"
    "bc16669de8136655ab6791cdc76bbb21d92b487e"
)
_CHUNK = 64 * 1024


class ManifestEntry(BaseModel):
    """One file of the release: where it lives upstream, its local name and checksum."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str  # local file name, e.g. "china.json"
    country: str
    upstream: str  # file name in the upstream repository
    size: int
    sha256: str


@dataclass(frozen=True)
class PullResult:
    """What happened to one file."""

    name: str
    path: Path
    status: Literal["present", "downloaded", "resumed"]
    bytes_downloaded: int


def load_manifest() -> tuple[ManifestEntry, ...]:
    """The manifest shipped in the package (``retrieval/data/adaculturesafe_manifest.jsonl``)."""
    text = resources.files("retrieval").joinpath("data", "adaculturesafe_manifest.jsonl")
    try:
        lines = [line for line in text.read_text(encoding="utf-8").splitlines() if line.strip()]
        return tuple(ManifestEntry.model_validate_json(line) for line in lines)
    except (OSError, ValidationError) as exc:
        raise DataPullError(f"the packaged dataset manifest is unreadable: {exc}") from exc


def select_entries(
    entries: Sequence[ManifestEntry], countries: Sequence[str] | None
) -> list[ManifestEntry]:
    """The entries for the named countries (case-insensitive country or file stem); all if none."""
    if not countries:
        return list(entries)
    wanted = {c.strip().lower() for c in countries}
    chosen = [e for e in entries if {e.country.lower(), Path(e.name).stem} & wanted]
    known = {e.country.lower() for e in entries} | {Path(e.name).stem for e in entries}
    unknown = sorted(wanted - known)
    if unknown:
        available = ", ".join(e.country for e in entries)
        raise DataPullError(f"unknown country {', '.join(unknown)}; available: {available}")
    return chosen


def file_url(base_url: str, entry: ManifestEntry) -> str:
    """Upstream names hold quotes, commas and CJK characters: percent-encode them."""
    return f"{base_url.rstrip('/')}/{quote(entry.upstream, safe='')}"


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def pull_dataset(
    dest: Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    countries: Sequence[str] | None = None,
    retries: int = 2,
    timeout_s: float = 30.0,
    show_progress: bool = True,
) -> list[PullResult]:
    """Download the selected files into ``dest``, skipping those already verified.

    Args:
        retries: how many times one file's download resumes after a dropped connection
            before giving up (the ``.part`` file stays, so a later call resumes too).

    Raises:
        DataPullError: HTTP error status, connection failure, unknown country.
        ChecksumMismatchError: the completed download has the wrong SHA-256 (deleted).
    """
    entries = select_entries(load_manifest(), countries)
    dest.mkdir(parents=True, exist_ok=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    headers = {"Accept-Encoding": "identity"}  # byte ranges must count raw bytes
    with (
        httpx.Client(timeout=timeout_s, follow_redirects=True, headers=headers) as client,
        Progress(*columns, disable=not show_progress) as progress,
    ):
        return [_pull_one(client, progress, entry, base_url, dest, retries) for entry in entries]


def _pull_one(
    client: httpx.Client,
    progress: Progress,
    entry: ManifestEntry,
    base_url: str,
    dest: Path,
    retries: int,
) -> PullResult:
    target = dest / entry.name
    if target.is_file() and sha256_file(target) == entry.sha256:
        return PullResult(entry.name, target, "present", 0)
    part = dest / f"{entry.name}.part"
    url = file_url(base_url, entry)
    task = progress.add_task(entry.name, total=entry.size)
    downloaded = resumed_from = 0
    for attempt in range(retries + 1):
        try:
            received, resumed_from = _download(client, progress, task, url, entry, part)
            downloaded += received
            break
        except httpx.TransportError as exc:
            if attempt == retries:
                kept = part.stat().st_size if part.exists() else 0
                raise DataPullError(
                    f"{entry.name}: download from {url} failed ({exc!r}); {kept} bytes kept "
                    f"in {part}, run the command again to resume"
                ) from exc
    actual = sha256_file(part)
    if actual != entry.sha256:
        part.unlink()
        raise ChecksumMismatchError(entry.name, entry.sha256, actual)
    os.replace(part, target)
    return PullResult(entry.name, target, "resumed" if resumed_from else "downloaded", downloaded)


def _download(
    client: httpx.Client,
    progress: Progress,
    task: TaskID,
    url: str,
    entry: ManifestEntry,
    part: Path,
) -> tuple[int, int]:
    """Append the rest of the file to ``part``; returns (bytes received, offset resumed at)."""
    offset = part.stat().st_size if part.is_file() else 0
    if offset >= entry.size:  # complete (checksum decides) or longer than expected
        if offset > entry.size:
            part.unlink()
            offset = 0
        else:
            progress.update(task, completed=offset)
            return 0, offset
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 206 and offset:
            if not response.headers.get("content-range", "").startswith(f"bytes {offset}-"):
                part.unlink()
                raise DataPullError(f"{entry.name}: {url} answered the wrong byte range")
            mode = "ab"
        elif response.status_code == 200:
            mode, offset = "wb", 0  # the server ignored the range: start again
        else:
            raise DataPullError(
                f"{entry.name}: HTTP {response.status_code} {response.reason_phrase} from {url}"
            )
        progress.update(task, completed=offset)
        received = 0
        with part.open(mode) as fh:
            try:
                for chunk in response.iter_bytes(_CHUNK):
                    fh.write(chunk)
                    received += len(chunk)
                    progress.advance(task, len(chunk))
            finally:
                fh.flush()
                os.fsync(fh.fileno())
    return received, offset
