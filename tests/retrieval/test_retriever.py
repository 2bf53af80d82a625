"""Retrieval on the real embedder over a small knowledge base, and the factory."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from app.config import Settings
from retrieval.build import build_retriever
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import DescriptionIndex, build_index
from retrieval.index_store import IndexMismatchError, read_manifest
from retrieval.locations import LocationDetector
from retrieval.models import Passage
from retrieval.protocols import Retriever
from retrieval.retriever import HYBRID, PLAIN_DENSE, HybridRetriever
from tests.retrieval.conftest import CountingEmbedder

THRESHOLD = Settings().similarity_threshold  # the default


@pytest.fixture(scope="module")
def retriever(tiny_index, minilm_embedder) -> HybridRetriever:
    return HybridRetriever(tiny_index, minilm_embedder, threshold=THRESHOLD)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Is it OK to pat a Thai kid on the head?", "th-head"),
        ("My Chinese colleague looked upset when I gave him a wall clock.", "cn-clock"),
        ("Why do people in Madrid have their evening meal so late?", "es-dinner"),
        ("Is the number 4 a bad omen for Chinese people?", "cn-four"),
    ],
)
def test_paraphrased_query_ranks_its_description_first(retriever, query, expected) -> None:
    results = retriever.search(query, 3)
    assert isinstance(retriever, Retriever)
    assert results[0].id == expected
    assert all(a.score >= THRESHOLD for a in results)
    assert len({p.id for p in results}) == len(results) <= 3


def test_location_filter_is_case_insensitive(retriever) -> None:
    results = retriever.search("greeting customs", 5, location="sPaIn")
    assert results and {p.location for p in results} == {"Spain"}
    assert retriever.search("greeting customs", 5, location="Atlantis") == []


def test_non_cultural_prompt_is_not_grounded(retriever) -> None:
    assert retriever.search("write a python function that reverses a list", 3) == []


# Batched and single-query embeddings differ in the last float32 bits (padding changes the
# kernels' summation order; by how much depends on the CPU): 6.9e-8 per component measured
# here, so at most sqrt(384) * 6.9e-8 = 1.4e-6 on a cosine. 1e-5 covers that with margin and
# stays far below any score gap that could reorder these passages (> 1e-2).
SCORE_TOLERANCE = 1e-5


def assert_same_passages(got: list[list[Passage]], expected: list[list[Passage]]) -> None:
    """Same passages in the same order (exact), scores within :data:`SCORE_TOLERANCE`."""
    assert [[p.model_dump(exclude={"score"}) for p in ps] for ps in got] == [
        [p.model_dump(exclude={"score"}) for p in ps] for ps in expected
    ]
    assert [[p.score for p in ps] for ps in got] == [
        pytest.approx([p.score for p in ps], abs=SCORE_TOLERANCE, rel=0) for ps in expected
    ]


def test_search_many_matches_search(retriever) -> None:
    queries = ["tea etiquette in China", "feet in Thailand"]
    batched = retriever.search_many(queries, 2)
    assert_same_passages(batched, [retriever.search(q, 2) for q in queries])
    assert retriever.search("anything", 0) == []


class BatchNoiseEmbedder:
    """The real embedder, with batches of more than one text off by the float noise
    measured above (as on a CPU whose padded-batch kernels round differently)."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        vectors = self.inner.encode(texts)
        if len(texts) > 1:
            noise = np.random.default_rng(0).uniform(-7e-8, 7e-8, vectors.shape)
            vectors = (vectors + noise).astype(np.float32)
        return vectors


def test_search_many_matches_search_where_batches_round_differently(
    tiny_index: DescriptionIndex, minilm_embedder: SentenceTransformerEmbedder
) -> None:
    noisy = HybridRetriever(tiny_index, BatchNoiseEmbedder(minilm_embedder), threshold=THRESHOLD)
    queries = ["tea etiquette in China", "feet in Thailand", "late dinner Spain"]
    batched = noisy.search_many(queries, 2)
    single = [noisy.search(q, 2) for q in queries]
    assert batched != single  # what the exact comparison failed on
    assert_same_passages(batched, single)


def test_concurrent_searches_agree(retriever) -> None:
    queries = ["clock gift", "late dinner Spain", "touching heads", "two kisses"] * 3
    expected = [retriever.search(q, 2) for q in queries]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert_same_passages(list(pool.map(lambda q: retriever.search(q, 2), queries)), expected)


def test_scores_beyond_the_tolerance_are_told_apart() -> None:
    passage = Passage(id="a", location="X", description="d", score=0.5)
    assert_same_passages([[passage]], [[passage.model_copy(update={"score": 0.5 + 1e-6})]])
    with pytest.raises(AssertionError):
        assert_same_passages([[passage]], [[passage.model_copy(update={"score": 0.5001})]])
    with pytest.raises(AssertionError):
        assert_same_passages([[passage]], [[passage.model_copy(update={"id": "b"})]])


def test_locations_are_detected_from_demonyms_and_names() -> None:
    detector = LocationDetector(["Thailand", "China", "Spain"])
    assert detector.detect("My Thai colleague in Bangkok") == ["Thailand"]
    assert detector.detect("Spaniards and the Chinese, Chinese tea") == ["China", "Spain"]
    assert detector.detect("write a python function") == []


def test_plain_dense_needs_the_plain_layout(tiny_kb, tiny_index, minilm_embedder) -> None:
    with pytest.raises(ValueError, match="needs layout"):
        HybridRetriever(tiny_index, minilm_embedder, threshold=0.3, method=PLAIN_DENSE)
    plain = build_index(tiny_kb.descriptions, minilm_embedder, layout=PLAIN_DENSE.layout)
    dense = HybridRetriever(plain, minilm_embedder, threshold=0.3, method=PLAIN_DENSE)
    assert dense.search("Can I give a clock to a friend in China?", 1)[0].id == "cn-clock"


def test_factory_builds_once_then_loads(tmp_path: Path, tiny_kb_file, minilm_embedder) -> None:
    index_dir = tmp_path / "index"

    def make(**kwargs: object) -> HybridRetriever:
        return build_retriever(
            data_dir=tiny_kb_file, index_dir=index_dir, embedder_model=None,
            threshold=THRESHOLD, embedder=minilm_embedder, **kwargs,  # type: ignore[arg-type]
        )

    first = make()
    assert first.manifest is not None and first.knowledge_base is not None
    assert first.manifest.layout == HYBRID.layout
    assert first.manifest.kb_content_hash == first.knowledge_base.content_hash
    again = make()
    assert again.manifest == first.manifest  # loaded, not rebuilt
    rebuilt = make(rebuild=True)
    assert rebuilt.manifest is not None
    assert rebuilt.manifest.checksums == first.manifest.checksums


def test_factory_refuses_an_index_of_other_data(
    tmp_path: Path, tiny_kb_file: Path, minilm_embedder
) -> None:
    index_dir = tmp_path / "index"
    other = tmp_path / "other.jsonl"
    other.write_text(tiny_kb_file.read_text().splitlines()[0] + "\n")
    build_retriever(data_dir=other, index_dir=index_dir, embedder_model=None, threshold=0.3,
                    embedder=minilm_embedder)
    with pytest.raises(IndexMismatchError, match="kb_content_hash"):
        build_retriever(data_dir=tiny_kb_file, index_dir=index_dir, embedder_model=None,
                        threshold=0.3, embedder=minilm_embedder)
    assert read_manifest(index_dir).num_passages == 1  # the old index is untouched
    fresh = build_retriever(data_dir=tiny_kb_file, index_dir=index_dir, embedder_model=None,
                            threshold=0.3, embedder=minilm_embedder, rebuild=True)
    assert fresh.manifest is not None and fresh.manifest.num_passages == 8


def test_failed_rebuild_keeps_the_old_index(
    tmp_path: Path, tiny_kb_file: Path, hashing_embedder
) -> None:
    index_dir = tmp_path / "index"
    build_retriever(data_dir=tiny_kb_file, index_dir=index_dir, embedder_model=None,
                    threshold=0.0, embedder=hashing_embedder)
    before = read_manifest(index_dir)
    hashing_embedder.fail_after = hashing_embedder.calls  # the next encode raises
    with pytest.raises(RuntimeError, match="injected"):
        build_retriever(data_dir=tiny_kb_file, index_dir=index_dir, embedder_model=None,
                        threshold=0.0, embedder=hashing_embedder, rebuild=True)
    assert read_manifest(index_dir) == before
    assert [p.name for p in tmp_path.iterdir()] == ["index"]



def test_a_location_the_caller_gives_is_embedded_with_the_query_as_in_the_index(
    tiny_index: DescriptionIndex, minilm_embedder: SentenceTransformerEmbedder
) -> None:
    embedder = CountingEmbedder(minilm_embedder)
    retriever = HybridRetriever(tiny_index, embedder, threshold=-1.0, method=HYBRID)
    alone = retriever.search("Which numbers are unlucky?", 1)
    located = retriever.search("Which numbers are unlucky?", 1, "China")
    named = retriever.search("Which numbers are unlucky in China?", 1, "China")
    assert embedder.calls == [["Which numbers are unlucky?"],
                              ["China: Which numbers are unlucky?"],
                              ["Which numbers are unlucky in China?"]]
    assert alone[0].id == located[0].id == named[0].id == "cn-four"
    assert located[0].score > alone[0].score
