"""The ONNX export cache, the backend setting, and the embedder wiring of the index.

Reuses the session's exported models (the ``onnx_*`` fixtures of conftest.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from app.config import Settings
from retrieval import onnx_export
from retrieval.build import build_retriever
from retrieval.embedder import DEFAULT_EMBEDDER_NAME, EmbedderLoadError, default_model_path
from retrieval.index import text_to_index
from retrieval.index_cli import index_app
from retrieval.index_store import IndexMismatchError, read_manifest
from retrieval.onnx_embedder import OnnxEmbedder


@pytest.fixture
def export_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records each real export (a spy: the export still runs)."""
    calls: list[Path] = []
    real = onnx_export._export_fp32

    def spy(source_dir: Path, target: Path) -> None:
        calls.append(target)
        real(source_dir, target)

    monkeypatch.setattr(onnx_export, "_export_fp32", spy)
    return calls


def _fp32_copy(onnx_cache: Path, tmp_path: Path, onnx_fp32: OnnxEmbedder) -> Path:
    cache = tmp_path / "cache"
    shutil.copytree(onnx_cache, cache)
    return cache / onnx_fp32.model_file.parent.relative_to(onnx_cache)


def test_a_current_export_is_reused(onnx_cache, tmp_path, onnx_fp32, export_calls) -> None:
    directory = _fp32_copy(onnx_cache, tmp_path, onnx_fp32)
    path = onnx_export.ensure_exported(default_model_path(), directory, "fp32")
    assert path == directory / onnx_export.MODEL_FILE and export_calls == []


def test_a_changed_source_checksum_exports_again(
    onnx_cache, tmp_path, onnx_fp32, export_calls
) -> None:
    directory = _fp32_copy(onnx_cache, tmp_path, onnx_fp32)
    manifest_path = directory / onnx_export.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["source_sha256"] = "0" * 64  # as if the weights had changed since
    manifest_path.write_text(json.dumps(manifest))
    onnx_export.ensure_exported(default_model_path(), directory, "fp32")
    assert len(export_calls) == 1
    fresh = json.loads(manifest_path.read_text())
    assert fresh["source_sha256"] == onnx_export.sha256_of(
        default_model_path() / "model.safetensors"
    )
    assert fresh["opset"] == onnx_export.OPSET and fresh["variant"] == "fp32"
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]  # no temp left
    onnx_export.ensure_exported(default_model_path(), directory, "fp32")
    assert len(export_calls) == 1  # now current


def test_a_missing_manifest_means_an_unfinished_export(
    onnx_cache, tmp_path, onnx_fp32, export_calls
) -> None:
    directory = _fp32_copy(onnx_cache, tmp_path, onnx_fp32)
    (directory / onnx_export.MANIFEST_FILE).unlink()
    onnx_export.ensure_exported(default_model_path(), directory, "fp32")
    assert len(export_calls) == 1 and (directory / onnx_export.MANIFEST_FILE).is_file()


def test_backend_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().embedder_backend == "onnx-int8"
    assert Settings(embedder_backend="torch").embedder_backend == "torch"
    monkeypatch.setenv("CULTURESAFE_EMBEDDER_BACKEND", "onnx")
    assert Settings().embedder_backend == "onnx"
    monkeypatch.setenv("CULTURESAFE_EMBEDDER_BACKEND", "tensorrt")
    with pytest.raises(ValidationError, match="embedder_backend"):
        Settings()


def test_an_int8_retriever_indexes_with_fp32_vectors(
    tmp_path: Path, tiny_kb_file: Path, onnx_cache: Path, onnx_fp32: OnnxEmbedder, onnx_int8
) -> None:
    retriever = build_retriever(
        data_dir=tiny_kb_file, index_dir=tmp_path / "index", embedder_model=None,
        threshold=0.3, embedder_backend="onnx-int8", embedder_cache_dir=onnx_cache,
    )
    assert isinstance(retriever.embedder, OnnxEmbedder) and retriever.embedder.variant == "int8"
    assert read_manifest(tmp_path / "index").embedder == DEFAULT_EMBEDDER_NAME
    index = retriever.index.faiss_index
    stored = np.stack([index.reconstruct(i) for i in range(retriever.index.num_vectors)])
    texts = [text_to_index(p.location, p.description, retriever.index.layout)
             for p in retriever.index.passages]
    np.testing.assert_allclose(stored, onnx_fp32.encode(texts), atol=1e-5)
    assert retriever.search("Why shouldn't I give my Chinese friend a clock?", 1)[0].id == (
        "cn-clock"
    )


def test_an_index_of_another_model_is_still_refused(
    tmp_path: Path, tiny_kb_file: Path, hashing_embedder, onnx_cache: Path, onnx_int8
) -> None:
    index_dir = tmp_path / "index"
    build_retriever(data_dir=tiny_kb_file, index_dir=index_dir, embedder_model=None,
                    threshold=0.0, embedder=hashing_embedder)
    with pytest.raises(IndexMismatchError, match="embedder"):
        build_retriever(data_dir=tiny_kb_file, index_dir=index_dir, embedder_model=None,
                        threshold=0.0, embedder_backend="onnx-int8",
                        embedder_cache_dir=onnx_cache)


def test_cli_exports_on_demand(onnx_cache: Path, onnx_fp32, onnx_int8) -> None:
    runner = CliRunner()
    done = runner.invoke(index_app, ["export-embedder", "--cache-dir", str(onnx_cache)])
    assert done.exit_code == 0, done.output
    assert "onnx: " in done.output and "onnx-int8: " in done.output
    assert "exporting" not in done.output  # both were current
    bad = runner.invoke(index_app, ["export-embedder", "--backend", "torch"])
    assert bad.exit_code == 2 and "must be one of onnx, onnx-int8, all" in bad.output


def test_an_unwritable_cache_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(EmbedderLoadError, match="cannot export .* to ONNX"):
        onnx_export.ensure_exported(default_model_path(), blocker / "fp32", "fp32")
