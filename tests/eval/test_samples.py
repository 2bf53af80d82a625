"""Stratified sampling and option shuffling: stable ids, fixed seeds, the gold text kept."""

from __future__ import annotations

from pathlib import Path

from eval.samples import shuffle_options, stratified_samples
from retrieval.knowledge_base import load_knowledge_base


def test_shuffle_moves_texts_and_keeps_the_gold_answer() -> None:
    options = {"A": "one", "B": "two", "C": "three", "D": "four"}
    moved = 0
    for i in range(50):
        shuffled, label = shuffle_options(options, "B", seed=f"s{i}")
        assert list(shuffled) == ["A", "B", "C", "D"]
        assert sorted(shuffled.values()) == sorted(options.values())
        assert shuffled[label] == "two"
        moved += label != "B"
        assert shuffle_options(options, "B", seed=f"s{i}") == (shuffled, label)
    assert moved > 25  # the gold answer leaves position B most of the time


def test_stratified_samples_are_stable_and_per_country(mini_data: Path) -> None:
    kb = load_knowledge_base(mini_data)
    first = stratified_samples(kb.descriptions, per_kind=4, seed=3)
    again = stratified_samples(kb.descriptions, per_kind=4, seed=3)
    assert [s.id for s in first] == [s.id for s in again]
    assert len({s.id for s in first}) == len(first)
    countries = {s.country for s in first}
    assert len(countries) == 5
    for country in countries:
        own = [s for s in first if s.country == country]
        assert sum(s.kind == "knowledge" and s.variant == "original" for s in own) == 4
        assert sum(s.kind == "knowledge" and s.variant == "shuffled" for s in own) == 4
        assert sum(s.kind == "safety" for s in own) == 4
        # knowledge and safety come from the same descriptions (needed for correlation)
        k = {s.description_id for s in own if s.kind == "knowledge"}
        assert k == {s.description_id for s in own if s.kind == "safety"}


def test_larger_quota_extends_the_smaller_one(mini_data: Path) -> None:
    kb = load_knowledge_base(mini_data)
    small = {s.id for s in stratified_samples(kb.descriptions, per_kind=3, seed=0)}
    large = {s.id for s in stratified_samples(kb.descriptions, per_kind=7, seed=0)}
    assert small < large


def test_country_and_kind_filters(mini_data: Path) -> None:
    kb = load_knowledge_base(mini_data)
    got = stratified_samples(kb.descriptions, per_kind=2, countries=["Spain"],
                             kinds=["safety"], shuffled=False)
    assert {(s.country, s.kind) for s in got} == {("spain", "safety")}
    assert len(got) == 2
    assert all(s.input and s.target is None for s in got)
