"""The LRU cache of query embeddings (real MiniLM) and the torch thread setting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.embedding_cache import CachedEmbedder, set_torch_threads
from tests.retrieval.conftest import CountingEmbedder

TEXTS = ["Is tipping rude in Japan?", "Gifts of four in China", "Siesta hours in Spain"]



def test_cached_vectors_are_identical_to_the_models(
    minilm_embedder: SentenceTransformerEmbedder,
) -> None:
    cached = CachedEmbedder(minilm_embedder, maxsize=8)
    first = cached.encode(TEXTS)
    again = cached.encode(list(reversed(TEXTS)))
    direct = minilm_embedder.encode(TEXTS)
    assert np.array_equal(first, direct)
    assert np.array_equal(again, direct[::-1])
    assert first.dtype == np.float32 and first.shape == (3, minilm_embedder.dimension)
    assert (cached.hits, cached.misses) == (3, 3)
    assert cached.name == minilm_embedder.name


def test_only_misses_reach_the_model_in_one_call(
    minilm_embedder: SentenceTransformerEmbedder,
) -> None:
    counting = CountingEmbedder(minilm_embedder)
    cached = CachedEmbedder(counting, maxsize=8)
    cached.encode(TEXTS[:1])
    cached.encode([*TEXTS, TEXTS[2]])  # one hit, two new texts (one given twice)
    assert counting.calls == [TEXTS[:1], TEXTS[1:]]
    assert cached.encode([]).shape == (0, minilm_embedder.dimension)


def test_the_cache_is_bounded_and_evicts_the_least_recently_used(
    minilm_embedder: SentenceTransformerEmbedder,
) -> None:
    counting = CountingEmbedder(minilm_embedder)
    cached = CachedEmbedder(counting, maxsize=2)
    cached.encode([TEXTS[0]])
    cached.encode([TEXTS[1]])
    cached.encode([TEXTS[0]])  # TEXTS[0] is now the most recent
    cached.encode([TEXTS[2]])  # evicts TEXTS[1]
    assert len(cached) == 2
    cached.encode([TEXTS[0]])
    assert counting.calls[-1] == [TEXTS[2]]  # TEXTS[0] was still cached
    cached.encode([TEXTS[1]])
    assert counting.calls[-1] == [TEXTS[1]]  # TEXTS[1] had been evicted
    assert len(cached) == 2


def test_a_returned_vector_cannot_change_the_cache(
    minilm_embedder: SentenceTransformerEmbedder,
) -> None:
    cached = CachedEmbedder(minilm_embedder, maxsize=4)
    out = cached.encode(TEXTS[:1])
    out[:] = 0.0
    assert np.array_equal(cached.encode(TEXTS[:1]), minilm_embedder.encode(TEXTS[:1]))
    with pytest.raises(ValueError, match="maxsize"):
        CachedEmbedder(minilm_embedder, maxsize=0)


def test_set_torch_threads_applies_and_returns_the_previous_value() -> None:
    before = torch.get_num_threads()
    try:
        assert set_torch_threads(1) == before
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
