"""The intent gate, fitted for real: packaged corpus, real all-MiniLM-L6-v2, real scikit-learn.

None of the texts below is in the training corpus (a test asserts it), so each case checks
what the gate learned, not what it memorised.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.intent import GATE_FILE, IntentGate, load_or_train_gate
from retrieval.intent_data import (
    CULTURAL_QUESTION,
    DISPARAGING,
    NOT_CULTURAL,
    packaged_examples,
)
from retrieval.knowledge_base import KnowledgeBase, load_knowledge_base
from retrieval.protocols import Embedder
from tests.retrieval.conftest import CountingEmbedder

ORDINARY = [
    "Which BTS station is closest to the Chatuchak weekend market in Bangkok?",
    "Is there a direct train from Bangkok to Hua Hin, and how long does it take?",
]
QUESTIONS = [
    "When I visit a temple in Bangkok, do I need to cover my shoulders?",
    "Should I bring a gift when a colleague in Seoul invites me home for dinner?",
]
DISPARAGING_REQUESTS = [
    "Indian weddings are just noisy showing off. Tell me why they are pathetic.",
    "The Spanish siesta is the laziest habit in Europe. Write a post mocking it.",
]


class RenamedEmbedder:
    """The same model under another name, as after a change of embedder setting."""

    def __init__(self, inner: Embedder, name: str) -> None:
        self.inner = inner
        self.name = name
        self.dimension = inner.dimension

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def starter() -> KnowledgeBase:
    return load_knowledge_base(None)


@pytest.fixture(scope="module")
def gate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("index")


@pytest.fixture(scope="module")
def gate(
    gate_dir: Path, minilm_embedder: SentenceTransformerEmbedder, starter: KnowledgeBase
) -> IntentGate:
    return load_or_train_gate(gate_dir, minilm_embedder, starter)


def intents(gate: IntentGate, embedder: Embedder, texts: list[str]) -> list[str]:
    return [p.intent for p in gate.predict(embedder.encode(texts))]


def test_the_cases_below_are_not_training_examples() -> None:
    trained = {e.text.casefold() for e in packaged_examples()}
    assert not trained & {t.casefold() for t in ORDINARY + QUESTIONS + DISPARAGING_REQUESTS}


def test_travel_prompts_naming_bangkok_are_not_cultural(
    gate: IntentGate, minilm_embedder: SentenceTransformerEmbedder
) -> None:
    assert intents(gate, minilm_embedder, ORDINARY) == [NOT_CULTURAL] * len(ORDINARY)


def test_neutral_questions_about_a_custom_are_cultural_questions(
    gate: IntentGate, minilm_embedder: SentenceTransformerEmbedder
) -> None:
    assert intents(gate, minilm_embedder, QUESTIONS) == [CULTURAL_QUESTION] * len(QUESTIONS)


def test_disparaging_requests_are_disparaging(
    gate: IntentGate, minilm_embedder: SentenceTransformerEmbedder
) -> None:
    got = intents(gate, minilm_embedder, DISPARAGING_REQUESTS)
    assert got == [DISPARAGING] * len(DISPARAGING_REQUESTS)


def test_probabilities_sum_to_one_and_thresholds_come_from_cross_validation(
    gate: IntentGate, minilm_embedder: SentenceTransformerEmbedder
) -> None:
    for prediction in gate.predict(minilm_embedder.encode(ORDINARY + QUESTIONS)):
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert 0.5 <= gate.cultural_threshold < 1 and 0.5 <= gate.disparaging_threshold < 1
    assert gate.info["cv_ordinary_cultural"] <= 0.01
    assert gate.info["examples"]["packaged"][0] >= 400


def test_saved_gate_reloads_identically_without_refitting(
    gate: IntentGate,
    gate_dir: Path,
    minilm_embedder: SentenceTransformerEmbedder,
    starter: KnowledgeBase,
) -> None:
    loaded = IntentGate.load(gate_dir)
    np.testing.assert_array_equal(loaded.coef, gate.coef)
    np.testing.assert_array_equal(loaded.intercept, gate.intercept)
    assert (loaded.cultural_threshold, loaded.disparaging_threshold, loaded.data_hash) == (
        gate.cultural_threshold,
        gate.disparaging_threshold,
        gate.data_hash,
    )
    vectors = minilm_embedder.encode(ORDINARY + QUESTIONS + DISPARAGING_REQUESTS)
    assert loaded.predict(vectors) == gate.predict(vectors)
    counting = CountingEmbedder(minilm_embedder)
    again = load_or_train_gate(gate_dir, counting, starter)
    assert counting.calls == []
    np.testing.assert_array_equal(again.coef, gate.coef)


def test_another_embedder_name_refits_the_gate_and_replaces_the_file(
    gate: IntentGate,
    minilm_embedder: SentenceTransformerEmbedder,
    starter: KnowledgeBase,
    tmp_path: Path,
) -> None:
    gate.save(tmp_path)
    counting = CountingEmbedder(RenamedEmbedder(minilm_embedder, "another/model"))
    refitted = load_or_train_gate(tmp_path, counting, starter)
    assert sum(len(call) for call in counting.calls) == len(packaged_examples())
    assert refitted.embedder == "another/model"
    assert json.loads((tmp_path / GATE_FILE).read_text())["embedder"] == "another/model"


@pytest.mark.parametrize(
    "content",
    ['{"format_version": 1, "coef": [[1.0]]}', "[1, 2]", "{not json", '{"format_version": 0}'],
)
def test_a_damaged_or_foreign_gate_file_is_rejected_on_load(content: str, tmp_path: Path) -> None:
    (tmp_path / GATE_FILE).write_text(content)
    with pytest.raises(ValueError):
        IntentGate.load(tmp_path)


def test_a_gate_fitted_for_one_index_is_reused_from_the_shared_cache_by_another(
    gate: IntentGate,
    minilm_embedder: SentenceTransformerEmbedder,
    starter: KnowledgeBase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import retrieval.intent as intent_module

    cache = tmp_path / "cache"
    first = load_or_train_gate(tmp_path / "index-a", minilm_embedder, starter, cache_dir=cache)
    monkeypatch.setattr(intent_module, "_FITTED", {})  # a new process: no in-memory fit
    counting = CountingEmbedder(minilm_embedder)
    second = load_or_train_gate(tmp_path / "index-b", counting, starter, cache_dir=cache)
    assert counting.calls == []  # read from the cache, not re-embedded
    np.testing.assert_array_equal(second.coef, first.coef)
    assert IntentGate.load(tmp_path / "index-b").data_hash == first.data_hash


def test_fitting_reports_its_embedding_progress_to_the_end(
    minilm_embedder: SentenceTransformerEmbedder,
) -> None:
    from retrieval.intent_fit import fit_gate

    examples = packaged_examples()
    calls: list[tuple[int, int]] = []
    fit_gate(minilm_embedder, examples, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) > 1 and calls[-1] == (len(examples), len(examples))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
