"""The location rule: a query that names a place gets that place's knowledge only.

Real embedder and FAISS over the tiny knowledge base; each case is also run without the
rule to show that another country's description would have passed the threshold.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.config import Settings
from retrieval.retriever import HYBRID, HybridRetriever

THRESHOLD = Settings().similarity_threshold


@pytest.fixture(scope="module")
def with_rule(tiny_index, minilm_embedder) -> HybridRetriever:
    assert HYBRID.location_consistent  # the shipped method has the rule
    return HybridRetriever(tiny_index, minilm_embedder, threshold=THRESHOLD)


@pytest.fixture(scope="module")
def without_rule(tiny_index, minilm_embedder) -> HybridRetriever:
    method = replace(HYBRID, location_consistent=False)
    return HybridRetriever(tiny_index, minilm_embedder, threshold=THRESHOLD, method=method)


@pytest.mark.parametrize(
    ("query", "named", "other"),
    [
        ("Do Spanish people bow with their palms together when they say hello?", "Spain",
         "th-wai"),
        ("Is it rude to point your feet at someone in Spain?", "Spain", "th-feet"),
        ("Is a clock a bad gift in Thailand?", "Thailand", "cn-clock"),
    ],
)
def test_a_named_location_keeps_other_locations_out(
    with_rule: HybridRetriever, without_rule: HybridRetriever, query: str, named: str,
    other: str,
) -> None:
    assert other in [p.id for p in without_rule.search(query, 3)]  # it would have passed
    found = with_rule.search(query, 3)
    assert found
    assert {p.location for p in found} == {named}


def test_other_locations_are_used_when_the_named_one_has_nothing(
    with_rule: HybridRetriever,
) -> None:
    found = with_rule.search("Is the number four unlucky in Spain?", 3)
    assert [p.id for p in found][:1] == ["cn-four"]


def test_every_named_location_is_kept(with_rule: HybridRetriever) -> None:
    found = with_rule.search("Compare greetings in Spain and Thailand", 3)
    assert {"es-kiss", "th-wai"} <= {p.id for p in found}


def test_a_query_that_names_no_location_is_unchanged(
    with_rule: HybridRetriever, without_rule: HybridRetriever,
) -> None:
    query = "Why is giving a clock as a present a bad idea?"
    assert with_rule.search(query, 3) == without_rule.search(query, 3)


def test_the_callers_location_stays_a_strict_filter(with_rule: HybridRetriever) -> None:
    found = with_rule.search("Is the number four unlucky?", 3, location="Spain")
    assert all(p.location == "Spain" for p in found)


@pytest.mark.parametrize(
    "query",
    [
        "Is a clock a bad gift in Kenya?",
        "Is it rude to point your feet at someone in Kenya?",
    ],
)
def test_a_place_outside_the_knowledge_base_gets_no_other_countrys_custom(
    with_rule: HybridRetriever, without_rule: HybridRetriever, query: str,
) -> None:
    assert without_rule.search(query, 3)  # another country's custom would have passed
    assert with_rule.search(query, 3) == []


def test_a_possessive_or_a_city_names_the_location(
    with_rule: HybridRetriever, without_rule: HybridRetriever,
) -> None:
    query = "Is pointing your feet at people rude in Madrid?"
    assert "th-feet" in [p.id for p in without_rule.search(query, 3)]
    assert [p.location for p in with_rule.search(query, 3)][:1] in ([], ["Spain"])
    found = with_rule.search("What is Thailand's custom about touching someone's head?", 3)
    assert found and {p.location for p in found} == {"Thailand"}
