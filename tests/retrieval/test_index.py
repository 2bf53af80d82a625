"""The FAISS index on disk: round trip, provenance checks, corruption, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retrieval.index import DEFAULT_LAYOUT, LAYOUT_PLAIN, build_index, text_to_index
from retrieval.index_store import (
    INDEX_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    load_index,
    read_manifest,
    save_index,
    verify_files,
)
from retrieval.knowledge_base import KnowledgeBase


def _expected(embedder: object, kb: KnowledgeBase, layout: str = DEFAULT_LAYOUT) -> dict:
    return {
        "embedder": embedder.name,  # type: ignore[attr-defined]
        "dimension": embedder.dimension,  # type: ignore[attr-defined]
        "layout": layout,
        "kb_content_hash": kb.content_hash,
    }


@pytest.fixture
def saved(tmp_path: Path, tiny_kb: KnowledgeBase, hashing_embedder) -> Path:
    index = build_index(tiny_kb.descriptions, hashing_embedder)
    directory = tmp_path / "index"
    save_index(index, directory, kb_hash=tiny_kb.content_hash, kb_source=tiny_kb.source)
    return directory


def test_layouts_name_the_location_or_not() -> None:
    text = "Do not point at items with your foot."
    assert text_to_index("Thailand", text, DEFAULT_LAYOUT) == f"Thailand: {text}"
    assert text_to_index("Thailand", text, LAYOUT_PLAIN) == text
    with pytest.raises(ValueError, match="unknown index layout"):
        text_to_index("Thailand", text, "paragraphs")


def test_round_trip_gives_the_same_results(
    tmp_path: Path, tiny_kb: KnowledgeBase, minilm_embedder, tiny_index
) -> None:
    directory = tmp_path / "index"
    save_index(tiny_index, directory, kb_hash=tiny_kb.content_hash, kb_source=tiny_kb.source)
    loaded = load_index(directory, expected=_expected(minilm_embedder, tiny_kb))

    query = minilm_embedder.encode(["Is it rude to touch a child's head in Bangkok?"])
    before, after = tiny_index.search(query, 5), loaded.search(query, 5)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0], rtol=0, atol=1e-6)
    assert loaded.passages == tiny_index.passages
    np.testing.assert_array_equal(loaded.rows, tiny_index.rows)


def test_manifest_records_provenance_and_checksums(saved: Path, tiny_kb: KnowledgeBase) -> None:
    manifest = read_manifest(saved)
    assert manifest.embedder == "test/hashing" and manifest.dimension == 64
    assert manifest.kb_content_hash == tiny_kb.content_hash
    assert manifest.num_passages == len(tiny_kb.descriptions)
    assert manifest.num_vectors == len(tiny_kb.descriptions)
    assert set(manifest.checksums) == {INDEX_FILE, METADATA_FILE}
    assert {"faiss-cpu", "numpy", "python"} <= set(manifest.versions)
    meta = json.loads((saved / METADATA_FILE).read_text())
    assert set(meta) == {"passages", "rows"}  # JSON, never pickle
    verify_files(saved, manifest)


def test_missing_index_is_reported_as_not_found(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="no index at"):
        read_manifest(tmp_path / "nowhere")


def test_other_embedder_is_a_mismatch_naming_it(saved: Path, tiny_kb, minilm_embedder) -> None:
    with pytest.raises(IndexMismatchError) as caught:
        load_index(saved, expected=_expected(minilm_embedder, tiny_kb))
    assert set(caught.value.differences) == {"embedder", "dimension"}
    assert "test/hashing" in str(caught.value) and "--rebuild" in str(caught.value)


def test_other_data_is_a_mismatch_naming_it(saved: Path, tiny_kb, hashing_embedder) -> None:
    expected = _expected(hashing_embedder, tiny_kb) | {"kb_content_hash": "0" * 64}
    with pytest.raises(IndexMismatchError, match="kb_content_hash") as caught:
        load_index(saved, expected=expected)
    assert set(caught.value.differences) == {"kb_content_hash"}


@pytest.mark.parametrize("name", [INDEX_FILE, METADATA_FILE])
def test_truncated_file_is_detected(saved: Path, tiny_kb, hashing_embedder, name: str) -> None:
    data = (saved / name).read_bytes()
    (saved / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match="corrupted or truncated"):
        load_index(saved, expected=_expected(hashing_embedder, tiny_kb))


def test_altered_byte_and_missing_file_are_detected(saved: Path, tiny_kb, hashing_embedder) -> None:
    data = bytearray((saved / INDEX_FILE).read_bytes())
    data[-5] ^= 0xFF
    (saved / INDEX_FILE).write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError):
        load_index(saved, expected=_expected(hashing_embedder, tiny_kb))
    (saved / METADATA_FILE).unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        verify_files(saved, read_manifest(saved))


def test_unreadable_manifest_is_detected(saved: Path) -> None:
    (saved / MANIFEST_FILE).write_text('{"embedder": ')
    with pytest.raises(IndexCorruptError, match="unreadable manifest"):
        read_manifest(saved)


def test_failure_while_saving_leaves_the_old_index_intact(
    saved: Path, tiny_kb: KnowledgeBase, hashing_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = {p.name: p.read_bytes() for p in saved.iterdir()}
    import retrieval.index_store as store

    real_fsync_dir = store._fsync_dir

    def crash_before_swap(path: Path) -> None:
        real_fsync_dir(path)
        raise OSError("injected: disk full")

    monkeypatch.setattr(store, "_fsync_dir", crash_before_swap)
    index = build_index(tiny_kb.descriptions[:3], hashing_embedder)
    with pytest.raises(OSError, match="injected"):
        save_index(index, saved, kb_hash="other", kb_source="other")
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == good
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temp dir left


def test_save_replaces_an_existing_index(saved: Path, tiny_kb: KnowledgeBase, hashing_embedder):
    index = build_index(tiny_kb.descriptions[:3], hashing_embedder, layout=LAYOUT_PLAIN)
    save_index(index, saved, kb_hash="h2", kb_source="s2")
    manifest = read_manifest(saved)
    assert (manifest.num_vectors, manifest.kb_content_hash) == (3, "h2")
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_swap_cut_between_renames_is_recovered(saved: Path) -> None:
    backup = saved.with_name(f".{saved.name}.old-deadbeef")
    saved.rename(backup)  # the state a crash between the two renames leaves
    assert read_manifest(saved).embedder == "test/hashing"
    assert not backup.exists()
