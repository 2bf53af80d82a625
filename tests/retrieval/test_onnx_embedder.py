"""The onnxruntime embedders (fp32, int8) against the torch one, on the real model.

Both variants are exported once per session into a temporary cache directory (the
``onnx_cache``, ``onnx_fp32`` and ``onnx_int8`` fixtures of conftest.py).
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedder import DEFAULT_EMBEDDER_NAME, EmbedderLoadError, default_model_path
from retrieval.embedder_factory import load_embedder
from retrieval.index import DescriptionIndex
from retrieval.onnx_embedder import OnnxEmbedder
from retrieval.protocols import Embedder
from retrieval.retriever import HYBRID, HybridRetriever
from tests.retrieval.conftest import TINY_KB_ROWS

QUERIES = [
    "Why shouldn't I give my Chinese friend a clock?",
    "Is it rude to touch a Thai child's head?",
    "How do people greet each other in Thailand?",
    "At what time do people in Spain have dinner?",
    "What should I do when my host pours me tea in China?",
    "Which numbers are lucky or unlucky for Chinese people?",
]
TEXTS = QUERIES + [text for _, _, text in TINY_KB_ROWS] + ["short", "A list in Python."]


def test_vectors_are_normalised_float32(onnx_fp32: OnnxEmbedder, onnx_int8: OnnxEmbedder) -> None:
    for embedder in (onnx_fp32, onnx_int8):
        assert isinstance(embedder, Embedder)
        assert embedder.name == DEFAULT_EMBEDDER_NAME and embedder.dimension == 384
        vectors = embedder.encode(TEXTS)
        assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert embedder.encode([]).shape == (0, 384)


def test_vectors_match_torch(minilm_embedder, onnx_fp32: OnnxEmbedder, onnx_int8) -> None:
    reference = minilm_embedder.encode(TEXTS)
    fp32 = np.sum(onnx_fp32.encode(TEXTS) * reference, axis=1)
    int8 = np.sum(onnx_int8.encode(TEXTS) * reference, axis=1)
    assert fp32.min() > 0.9999  # measured 0.99999964
    assert int8.min() > 0.97 and int8.mean() > 0.985  # measured min 0.985, mean 0.993


def test_long_texts_are_truncated_like_sentence_transformers(minilm_embedder, onnx_fp32) -> None:
    long = " ".join(text for _, _, text in TINY_KB_ROWS) * 4  # > 256 tokens
    cosine = float(onnx_fp32.encode([long])[0] @ minilm_embedder.encode([long])[0])
    assert cosine > 0.9999


def test_rankings_agree_with_torch_on_a_tiny_index(
    tiny_index: DescriptionIndex, minilm_embedder, onnx_int8: OnnxEmbedder
) -> None:
    # The int8 query embedder searches the index built by torch (same model name).
    torch_side = HybridRetriever(tiny_index, minilm_embedder, threshold=-1.0, method=HYBRID)
    int8_side = HybridRetriever(tiny_index, onnx_int8, threshold=-1.0, method=HYBRID)
    for query in QUERIES:
        expected = [p.id for p in torch_side.search(query, 3)]
        assert [p.id for p in int8_side.search(query, 3)][0] == expected[0], query


def test_concurrent_encodes_match_serial(onnx_int8: OnnxEmbedder) -> None:
    singles = [onnx_int8.encode([text])[0] for text in TEXTS]
    batches = [onnx_int8.encode(TEXTS[i : i + 4]) for i in range(0, len(TEXTS), 4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded_singles = list(pool.map(lambda t: onnx_int8.encode([t])[0], TEXTS * 3))
        threaded_batches = list(
            pool.map(lambda i: onnx_int8.encode(TEXTS[i : i + 4]), range(0, len(TEXTS), 4))
        )
    np.testing.assert_array_equal(np.stack(threaded_singles), np.stack(singles * 3))
    for threaded, serial in zip(threaded_batches, batches, strict=True):
        np.testing.assert_array_equal(threaded, serial)
    # int8 runs one text at a time, so a vector never depends on its batch-mates.
    np.testing.assert_array_equal(np.concatenate(batches), np.stack(singles))


def test_int8_chunks_would_make_vectors_depend_on_batch_mates(onnx_cache) -> None:
    # Why int8 runs one text at a time (module docstring): quantised per run.
    chunked = OnnxEmbedder(cache_dir=onnx_cache, variant="int8", batch_size=16)
    alone = np.stack([chunked.encode([text])[0] for text in TEXTS])
    together = chunked.encode(TEXTS)
    assert not np.array_equal(alone, together)
    assert np.sum(alone * together, axis=1).min() > 0.95


def test_order_of_texts_is_kept(onnx_fp32: OnnxEmbedder) -> None:
    vectors = onnx_fp32.encode(TEXTS)
    reverse = onnx_fp32.encode(TEXTS[::-1])
    np.testing.assert_allclose(reverse[::-1], vectors, atol=1e-5)


def test_factory_builds_each_backend_and_refuses_unknown(onnx_cache: Path) -> None:
    embedder = load_embedder(None, "onnx", cache_dir=onnx_cache, threads=1)
    assert isinstance(embedder, OnnxEmbedder) and embedder.variant == "fp32"
    with pytest.raises(EmbedderLoadError, match="unknown embedder backend 'tensorrt'"):
        load_embedder(None, "tensorrt", cache_dir=onnx_cache)


def test_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbedderLoadError, match="local sentence-transformers model directory"):
        OnnxEmbedder(str(tmp_path / "no-such-model"), cache_dir=tmp_path)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(EmbedderLoadError, match="no model.safetensors"):
        OnnxEmbedder(str(empty), cache_dir=tmp_path)


def test_a_corrupt_cached_model_is_exported_again(onnx_cache: Path, tmp_path: Path,
                                                  onnx_fp32: OnnxEmbedder) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(onnx_cache, cache)
    model = onnx_fp32.model_file.relative_to(onnx_cache)
    (cache / model).write_bytes(b"half a model")  # e.g. a disk that filled up
    repaired = OnnxEmbedder(cache_dir=cache, variant="fp32")
    np.testing.assert_allclose(repaired.encode(QUERIES), onnx_fp32.encode(QUERIES), atol=1e-5)
    assert (cache / model).stat().st_size > 1_000_000


def test_a_corrupt_model_with_a_matching_manifest_is_a_clear_error(
    onnx_cache: Path, tmp_path: Path, onnx_fp32: OnnxEmbedder
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(onnx_cache, cache)
    model = cache / onnx_fp32.model_file.relative_to(onnx_cache)
    model.write_bytes(b"not an onnx model")
    manifest_path = model.with_name("manifest.json")
    manifest = json.loads(manifest_path.read_text())
    import hashlib

    manifest["model_sha256"] = hashlib.sha256(b"not an onnx model").hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(EmbedderLoadError, match="cannot load the exported model"):
        OnnxEmbedder(cache_dir=cache, variant="fp32")


def test_default_model_path_holds_what_export_needs() -> None:
    source = default_model_path()
    assert (source / "model.safetensors").is_file() and (source / "tokenizer.json").is_file()
