"""Saving and loading an index directory: atomic, checksummed, provenance-checked.

Save builds the new directory beside the target (same parent, so the final rename stays
on one file system), fsyncs every file and the directory, then swaps it in: a crash or
an exception never leaves a half-written index and never damages a good one. Load
verifies the manifest against what the caller expects and the SHA-256 of every file, so
a stale, foreign, truncated or corrupted index is reported as such, never half-used.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from retrieval.errors import RetrievalError
from retrieval.index import (
    FORMAT_VERSION,
    PROBE_MIN_COSINE,
    DescriptionIndex,
    IndexManifest,
    PassageRecord,
    embedder_probe,
    probe_cosine,
)
from retrieval.protocols import Embedder

INDEX_FILE = "index.faiss"
METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"
_VERSIONED = ("faiss-cpu", "sentence-transformers", "torch", "numpy", "culturesafe")


class IndexNotFoundError(RetrievalError):
    """No index has been built in this directory yet."""


class IndexCorruptError(RetrievalError):
    """The index directory is damaged: a file is missing, truncated or altered."""


class IndexMismatchError(RetrievalError):
    """The index was built by another embedder, layout or knowledge base.

    Attributes:
        differences: field -> (found in the manifest, expected now).
    """

    def __init__(self, directory: Path, differences: dict[str, tuple[object, object]]) -> None:
        self.differences = differences
        listed = "; ".join(
            f"{field}: index has {found!r}, expected {wanted!r}"
            for field, (found, wanted) in differences.items()
        )
        super().__init__(
            f"index at {directory} does not match the current configuration ({listed}); "
            "rebuild it with `culturesafe index build --rebuild` or set "
            "CULTURESAFE_REBUILD_INDEX=true"
        )


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _write_synced(path: Path, data: bytes) -> str:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_into_place(new: Path, target: Path) -> None:
    """Replace ``target`` by ``new`` (both directories in the same parent)."""
    if not target.exists():
        os.rename(new, target)
    else:
        backup = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(target, backup)
        try:
            os.rename(new, target)
        except OSError:
            os.rename(backup, target)
            raise
        _fsync_dir(target.parent)
        shutil.rmtree(backup, ignore_errors=True)
    _fsync_dir(target.parent)


def _recover_interrupted_swap(target: Path) -> None:
    """Put back the previous index if a swap was cut between its two renames."""
    if target.exists():
        return
    backups = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if backups:
        os.rename(backups[-1], target)


def save_index(index: DescriptionIndex, directory: Path, *, kb_hash: str, kb_source: str) -> None:
    """Write ``index`` to ``directory`` atomically, replacing any index already there."""
    import faiss

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        raw_index = faiss.serialize_index(index.faiss_index).tobytes()
        raw_meta = json.dumps(
            {
                "passages": [p.model_dump() for p in index.passages],
                "rows": index.rows.tolist(),
            },
            ensure_ascii=False,
        ).encode()
        checksums = {
            INDEX_FILE: _write_synced(staging / INDEX_FILE, raw_index),
            METADATA_FILE: _write_synced(staging / METADATA_FILE, raw_meta),
        }
        manifest = IndexManifest(
            format_version=FORMAT_VERSION,
            embedder=index.embedder,
            dimension=index.dimension,
            layout=index.layout,
            kb_content_hash=kb_hash,
            kb_source=kb_source,
            num_passages=len(index.passages),
            num_vectors=index.num_vectors,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            versions=_versions(),
            checksums=checksums,
            embedder_probe=index.probe,
        )
        _write_synced(staging / MANIFEST_FILE, manifest.model_dump_json(indent=2).encode())
        _fsync_dir(staging)
        _swap_into_place(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_manifest(directory: Path) -> IndexManifest:
    """The manifest of ``directory``; IndexNotFoundError or IndexCorruptError otherwise."""
    directory = Path(directory)
    _recover_interrupted_swap(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise IndexNotFoundError(f"no index at {directory} (missing {MANIFEST_FILE})")
    try:
        return IndexManifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise IndexCorruptError(
            f"{path}: unreadable manifest ({exc.error_count()} errors); rebuild the index"
        ) from exc


def _read_verified(directory: Path, name: str, manifest: IndexManifest) -> bytes:
    path = directory / name
    if not path.is_file():
        raise IndexCorruptError(f"index at {directory} is missing {name}; rebuild it")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.checksums.get(name):
        raise IndexCorruptError(
            f"{path} is corrupted or truncated (SHA-256 differs from the manifest); rebuild it"
        )
    return data


def verify_files(directory: Path, manifest: IndexManifest) -> None:
    """Check every file the manifest lists against its SHA-256 (IndexCorruptError if not)."""
    for name in (INDEX_FILE, METADATA_FILE):
        _read_verified(Path(directory), name, manifest)


def load_index(
    directory: Path, *, expected: dict[str, object], embedder: Embedder | None = None
) -> DescriptionIndex:
    """Load and verify the index in ``directory``.

    Args:
        directory: the index directory written by :func:`save_index`.
        expected: manifest fields that must match, e.g. ``{"embedder": ..., "dimension":
            ..., "layout": ..., "kb_content_hash": ...}``; any difference raises
            :class:`IndexMismatchError` naming each one.
        embedder: the query embedder, when given: its probe vector must be the
            builder's (cosine >= :data:`~retrieval.index.PROBE_MIN_COSINE`), else
            :class:`IndexMismatchError` (skipped for indexes that recorded no probe).
    """
    import faiss

    directory = Path(directory)
    manifest = read_manifest(directory)
    wanted = {"format_version": FORMAT_VERSION, **expected}
    found = manifest.model_dump()
    differences = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
    if not differences and embedder is not None and manifest.embedder_probe is not None:
        cosine = probe_cosine(manifest.embedder_probe, embedder_probe(embedder))
        if cosine < PROBE_MIN_COSINE:
            differences["embedder vectors"] = (
                f"probe cosine {cosine:.3f} between builder and {embedder.name}",
                f">= {PROBE_MIN_COSINE} (the same model)",
            )
    if differences:
        raise IndexMismatchError(directory, differences)
    raw_index = _read_verified(directory, INDEX_FILE, manifest)
    raw_meta = _read_verified(directory, METADATA_FILE, manifest)
    try:
        faiss_index = faiss.deserialize_index(np.frombuffer(raw_index, dtype=np.uint8))
        meta = json.loads(raw_meta)
        passages = tuple(PassageRecord.model_validate(p) for p in meta["passages"])
        rows = np.asarray(meta["rows"], dtype=np.int64)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(f"index at {directory} cannot be read: {exc}") from exc
    if faiss_index.ntotal != manifest.num_vectors or rows.shape[0] != manifest.num_vectors:
        raise IndexCorruptError(f"index at {directory}: vector count differs from the manifest")
    return DescriptionIndex(
        faiss_index=faiss_index,
        passages=passages,
        rows=rows,
        embedder=manifest.embedder,
        dimension=manifest.dimension,
        layout=manifest.layout,
        probe=manifest.embedder_probe,
    )
