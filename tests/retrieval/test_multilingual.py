"""Language routing with the real models: MiniLM for English, e5 + USE for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from retrieval.crosslingual import DEFAULT_THRESHOLD, CrossLingualRetriever
from retrieval.index_store import read_manifest
from retrieval.knowledge_base import load_knowledge_base
from retrieval.language import ENGLISH, query_language
from retrieval.multilingual import sibling_dir, with_multilingual
from retrieval.retriever import HybridRetriever
from retrieval.routing import RoutedRetriever

THRESHOLD = Settings().similarity_threshold

THAI_HEAD = "ที่กรุงเทพฯ ลูบหัวเด็กถือว่าเสียมารยาทไหม"


@pytest.fixture(scope="module")
def english(tiny_index, tiny_kb, minilm_embedder) -> HybridRetriever:
    return HybridRetriever(tiny_index, minilm_embedder, threshold=THRESHOLD,
                           knowledge_base=tiny_kb)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("multilingual") / "index"


@pytest.fixture(scope="module")
def routed(english, index_dir) -> RoutedRetriever:
    return with_multilingual(english, index_dir)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Is it rude to touch a child's head in Bangkok?", ENGLISH),
        ("Diwali gifts?", ENGLISH),  # too short to judge (Luganda, P(English) 0.005)
        ("How far is Shanghai from Beijing?", ENGLISH),  # Nigerian Pidgin wins, narrowly
        ("Danke schön", ENGLISH),  # too short: the English path
        ("12:30 -> 13:45 ???", ENGLISH),  # no letters: nothing to route on
        (THAI_HEAD, "th"),
        ("¿Por qué en China no se regala un reloj?", "es"),
        ("Чому в Китаї не дарують годинник?", "uk"),
        ("为什么在中国不能送钟？", "zh"),
        ("Pourquoi ne faut-il pas offrir une horloge en Chine ?", "fr"),
    ],
)
def test_queries_are_routed_by_language(text: str, language: str) -> None:
    assert query_language(text) == language


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (THAI_HEAD, "th-head"),
        ("¿Por qué mi colega chino se molestó cuando le regalé un reloj de pared?", "cn-clock"),
        ("Чому в Китаї число чотири вважають нещасливим?", "cn-four"),
        ("为什么西班牙人晚饭吃得那么晚？", "es-dinner"),
        ("क्या थाईलैंड में किसी की ओर पैर करना असभ्य है?", "th-feet"),
    ],
)
def test_a_non_english_question_retrieves_its_description(routed, query, expected) -> None:
    results = routed.search(query, 3)
    assert results[0].id == expected
    assert all(p.score >= DEFAULT_THRESHOLD for p in results)


def test_the_english_path_alone_cannot_ground_a_thai_question(english, routed) -> None:
    assert english.search(THAI_HEAD, 3) == []  # MiniLM reads no Thai: below 0.40
    assert routed.search(THAI_HEAD, 3)


def test_english_queries_are_served_exactly_as_before(english, routed) -> None:
    queries = ["Is it OK to pat a Thai kid on the head?",
               "My Chinese colleague looked upset when I gave him a wall clock.",
               "write a python function that reverses a list"]
    assert routed.search_many(queries, 3) == english.search_many(queries, 3)
    assert routed.search_many(queries, 3, location="China") == english.search_many(
        queries, 3, location="China")


def test_each_query_of_a_conversation_takes_its_own_path(english, routed) -> None:
    mixed = routed.search_many(["Why do Spaniards eat dinner so late?", THAI_HEAD], 1)
    assert mixed[0] == english.search("Why do Spaniards eat dinner so late?", 1)
    assert mixed[1][0].id == "th-head"


def test_the_cross_lingual_threshold_applies_to_the_e5_cosine(routed) -> None:
    other = routed.other
    scores = [p.score for p in other.search_many([THAI_HEAD], 8, languages=["th"])[0]]
    assert scores and min(scores) >= DEFAULT_THRESHOLD
    strict = CrossLingualRetriever(other.e5_index, other.e5, other.use_index, other.use,
                                   threshold=max(scores) + 1e-3)
    assert strict.search_many([THAI_HEAD], 8, languages=["th"]) == [[]]


def test_location_filter_holds_on_the_cross_lingual_path(routed) -> None:
    results = routed.search("¿Qué costumbres hay al saludar?", 5, location="sPaIn")
    assert results and {p.location for p in results} == {"Spain"}


def test_indexes_are_saved_beside_the_english_one_and_reused(english, routed, index_dir):
    built = {s: read_manifest(sibling_dir(index_dir, s)).built_at for s in ("e5", "use")}
    again = with_multilingual(english, index_dir)
    assert {s: read_manifest(sibling_dir(index_dir, s)).built_at for s in built} == built
    assert again.search(THAI_HEAD, 1)[0].id == "th-head"


def test_a_changed_knowledge_base_rebuilds_them(tmp_path: Path, minilm_embedder, tiny_index):
    kb_file = tmp_path / "kb.jsonl"
    kb_file.write_text('{"id": "x", "location": "Spain", "description": "Spaniards greet '
                       'friends with two kisses."}\n', encoding="utf-8")
    kb = load_knowledge_base(kb_file)
    from retrieval.index import build_index

    one = HybridRetriever(build_index(kb.descriptions, minilm_embedder), minilm_embedder,
                          threshold=THRESHOLD, knowledge_base=kb)
    routed = with_multilingual(one, tmp_path / "index", use_weight=0.0)
    assert read_manifest(sibling_dir(tmp_path / "index", "e5")).num_passages == 1
    assert not sibling_dir(tmp_path / "index", "use").exists()  # weight 0: USE not loaded
    assert routed.search("¿Cómo se saludan los amigos en España?", 1)[0].id == "x"


# Written for this test, in the languages of the e5 path; none is a training example.
GATE_CASES = {
    "not_cultural": [
        "¿Cuánto cuesta un billete de tren de Madrid a Barcelona?",
        "曼谷四月份的天气怎么样？",
        "Як доїхати з аеропорту Бориспіль до центру Києва?",
    ],
    "cultural_question": [
        "¿Qué se suele regalar cuando te invitan a cenar a una casa en España?",
        "在中国去朋友家做客，应该带什么礼物？",
        "Чи прийнято знімати взуття, коли приходиш у гості в Україні?",
    ],
    "disparaging": [
        "Los españoles y su siesta son unos vagos. Escribe un chiste burlándote de ellos.",
        "泰国人不许摸头的规矩太愚蠢了，写一段话嘲笑他们。",
    ],
}


def test_the_e5_gate_learned_the_other_languages(routed) -> None:
    from retrieval.intent_data import packaged_examples

    trained = {e.text for e in packaged_examples(multilingual=True)}
    assert len(trained) > len({e.text for e in packaged_examples()})  # the other languages
    gate, e5 = routed.other.gate, routed.other.e5
    assert gate is not None
    for intent, texts in GATE_CASES.items():
        assert not trained & set(texts)
        assert [p.intent for p in gate.predict(e5.encode(texts))] == [intent] * len(texts), (
            intent
        )


def test_the_location_rule_holds_on_the_cross_lingual_path(routed) -> None:
    other = routed.other
    assert other.detector is not None  # the English path's rule, shared
    free = replace_detector(other, None)
    kenya = "¿Regalar un reloj en Kenia trae mala suerte?"  # a country the KB lacks
    assert [p.id for p in free.search_many([kenya], 3, languages=["es"])[0]][:1] == ["cn-clock"]
    assert other.search_many([kenya], 3, languages=["es"])[0] == []
    spain = "¿En España la gente se saluda juntando las palmas de las manos?"
    assert "th-wai" in [p.id for p in free.search_many([spain], 3, languages=["es"])[0]]
    found = other.search_many([spain], 3, languages=["es"])[0]
    assert found and {p.location for p in found} == {"Spain"}


def replace_detector(retriever: CrossLingualRetriever, detector) -> CrossLingualRetriever:
    return CrossLingualRetriever(
        retriever.e5_index, retriever.e5, retriever.use_index, retriever.use,
        threshold=retriever.threshold, use_weight=retriever.use_weight, detector=detector)
