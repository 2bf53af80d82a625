"""The packaged sentence-transformers embedder, loaded offline (the real model)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from retrieval.embedder import (
    DEFAULT_EMBEDDER_NAME,
    EmbedderLoadError,
    SentenceTransformerEmbedder,
    embedder_name,
)
from retrieval.protocols import Embedder


def test_default_is_the_packaged_minilm(minilm_embedder: SentenceTransformerEmbedder) -> None:
    assert isinstance(minilm_embedder, Embedder)
    assert minilm_embedder.name == DEFAULT_EMBEDDER_NAME
    assert minilm_embedder.dimension == 384


def test_vectors_are_normalised_float32(minilm_embedder: SentenceTransformerEmbedder) -> None:
    vectors = minilm_embedder.encode(["Bowing is a greeting in Japan.", "A list in Python."])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm_embedder.encode([]).shape == (0, 384)


def test_paraphrases_are_closer_than_unrelated_texts(minilm_embedder) -> None:
    a, b, c = minilm_embedder.encode(
        [
            "Giving a clock as a present is avoided in China.",
            "Why shouldn't I give my Chinese friend a clock?",
            "How do I reverse a linked list?",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.3


def test_concurrent_encodes_match_sequential(minilm_embedder) -> None:
    texts = [f"Custom number {i} of a festival in Spain." for i in range(8)]
    expected = minilm_embedder.encode(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda t: minilm_embedder.encode([t])[0], texts))
    np.testing.assert_allclose(np.stack(results), expected, atol=1e-5)


def test_unknown_model_fails_with_a_clear_error(tmp_path) -> None:
    with pytest.raises(EmbedderLoadError, match="cannot load embedding model"):
        SentenceTransformerEmbedder(str(tmp_path / "no-such-model"))


def test_names_recorded_in_manifests_are_stable(tmp_path) -> None:
    assert embedder_name(None) == DEFAULT_EMBEDDER_NAME
    assert embedder_name(DEFAULT_EMBEDDER_NAME) == DEFAULT_EMBEDDER_NAME
    assert embedder_name(str(tmp_path)) == str(tmp_path.resolve())
    assert embedder_name("org/some-model") == "org/some-model"
