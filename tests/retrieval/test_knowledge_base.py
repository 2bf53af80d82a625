"""The knowledge-base loader on the real AdaCultureSafe sample, JSONL files and the starter KB."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from retrieval.knowledge_base import (
    KnowledgeBase,
    content_hash,
    load_knowledge_base,
)
from tests.dataset_slices import DATASET

README_COUNTS = {  # descriptions, knowledge MCQs, safety queries (dataset README)
    "China": (199, 995, 994),
    "India": (243, 1205, 1215),
    "Spain": (215, 1054, 1075),
    "Thailand": (241, 1205, 1205),
    "Ukraine": (228, 1131, 1140),
}
# Pinned so that an accidental change to the hash serialisation is noticed (it would
# invalidate every index already built).
DATASET_CONTENT_HASH = "9baf081d0ee684efb852a44bf9ad25be32c89e06c6b37575fdddcf4d1bc299e3"


@pytest.fixture(scope="module")
def full_kb() -> KnowledgeBase:
    return load_knowledge_base(DATASET)


def _ada_item(description: str = "A custom.", location: str = "Testland") -> dict[str, Any]:
    return {
        "Cultural Description": description,
        "Location": location,
        "Cultural Knowledge": [
            {"question": "Q?", "options": {"A": "x", "B": "y"}, "label": "B", "checked": "true"}
        ],
        "Cultural Safety": [{"scene": "S.", "requirement": "R.", "checked": "false"}],
    }


def _write(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return path


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- the real five-country sample ---------------------------------------------------------


def test_full_dataset_matches_readme_counts(full_kb: KnowledgeBase) -> None:
    assert len(full_kb) == 1126
    assert sum(len(d.knowledge) for d in full_kb.descriptions) == 5590
    assert sum(len(d.safety) for d in full_kb.descriptions) == 5629
    assert full_kb.locations == sorted(README_COUNTS)
    for location, (n_desc, n_knowledge, n_safety) in README_COUNTS.items():
        items = [d for d in full_kb.descriptions if d.location == location]
        assert (
            len(items),
            sum(len(d.knowledge) for d in items),
            sum(len(d.safety) for d in items),
        ) == (n_desc, n_knowledge, n_safety)
    assert full_kb.skipped == 0
    assert full_kb.source == str(DATASET)


def test_full_dataset_ids_are_location_qualified_and_unique(full_kb: KnowledgeBase) -> None:
    # Upstream ids repeat across countries (only 432 distinct over 1126 items).
    ids = [d.id for d in full_kb.descriptions]
    assert len(set(ids)) == len(ids)
    china = full_kb.by_id("china/commisceo-item_42-0")
    india = full_kb.by_id("india/commisceo-item_42-0")
    assert (china.location, india.location) == ("China", "India")
    assert "number four" in china.description
    assert china.source == "commisceo"
    assert {d.source for d in full_kb.descriptions} == {"culturalatlas", "commisceo", "中国领事馆"}
    with pytest.raises(KeyError, match="no description with id"):
        full_kb.by_id("commisceo-item_42-0")


def test_full_dataset_quirks_are_loaded_faithfully(full_kb: KnowledgeBase) -> None:
    questions = [q for d in full_kb.descriptions for q in d.knowledge]
    long_options = [q for q in questions if len(q.options) > 4]
    # The README says 13; the files hold 12, all options split at "(" by the upstream parser.
    assert sorted(len(q.options) for q in long_options) == [5] * 9 + [6] + [8] * 2
    assert sum(text == "" for q in questions for text in q.options.values()) == 17
    assert all(q.label in q.options for q in questions)
    assert all(q.checked is True for q in questions)  # "true" strings became booleans
    assert all(s.checked is True for d in full_kb.descriptions for s in d.safety)
    # One upstream description ends with a space; text is stripped.
    assert all(d.description == d.description.strip() for d in full_kb.descriptions)
    assert full_kb.by_id("ukraine/culturalatlas-item_42-0").description.endswith("identity.")
    # Not every description has 5 questions and 5 queries.
    assert len(full_kb.by_id("spain/commisceo-item_70-0").knowledge) == 1
    assert len(full_kb.by_id("china/culturalatlas-item_14-0").safety) == 4


def test_single_dataset_file_loads_alone() -> None:
    kb = load_knowledge_base(DATASET / "china.json")
    assert len(kb) == 199
    assert kb.locations == ["China"]


def test_content_hash_of_the_dataset_is_pinned(full_kb: KnowledgeBase) -> None:
    assert full_kb.content_hash == DATASET_CONTENT_HASH


# --- JSONL and directories ------------------------------------------------------------------


def test_jsonl_file_loads_with_optional_source(tmp_path: Path) -> None:
    rows = [
        {"id": "my-1", "location": "Japan", "description": "Bow when greeting.", "source": "me"},
        {"id": "my-2", "location": "Peru", "description": "  Coca tea is offered.  "},
    ]
    path = _write_jsonl(tmp_path / "mine.jsonl", rows)
    path.write_text(path.read_text() + "\n   \n", encoding="utf-8")  # blank lines are ignored
    kb = load_knowledge_base(path)
    assert [d.id for d in kb.descriptions] == ["my-1", "my-2"]
    assert kb.by_id("my-1").source == "me"
    assert kb.by_id("my-2").source is None
    assert kb.by_id("my-2").description == "Coca tea is offered."
    assert kb.by_id("my-2").knowledge == ()
    assert kb.locations == ["Japan", "Peru"]


def test_directory_mixes_formats_and_ignores_other_files(tmp_path: Path) -> None:
    _write(tmp_path / "b.json", {"commisceo-x-1": _ada_item()})
    _write_jsonl(tmp_path / "a.jsonl", [{"id": "mine-1", "location": "Peru", "description": "D."}])
    (tmp_path / "README.md").write_text("not data")
    (tmp_path / "c.json.part").write_text("{half a downl")
    (tmp_path / ".hidden.json").write_text("{broken")
    kb = load_knowledge_base(tmp_path)
    assert [d.id for d in kb.descriptions] == ["mine-1", "testland/commisceo-x-1"]
    item = kb.by_id("testland/commisceo-x-1")
    assert item.source == "commisceo"
    assert item.knowledge[0].label == "B"
    assert item.safety[0].checked is False


# --- content hash -----------------------------------------------------------------------


def test_content_hash_ignores_order_and_benchmark_items(tmp_path: Path) -> None:
    one = {"src-1": _ada_item("First."), "src-2": _ada_item("Second.")}
    two = {"src-2": _ada_item("Second."), "src-1": _ada_item("First.")}
    two["src-1"]["Cultural Knowledge"][0]["label"] = "A"  # not indexable content
    hash_one = load_knowledge_base(_write(tmp_path / "one.json", one)).content_hash
    hash_two = load_knowledge_base(_write(tmp_path / "two.json", two)).content_hash
    assert hash_one == hash_two
    assert hash_one == load_knowledge_base(tmp_path / "one.json").content_hash


@pytest.mark.parametrize(
    ("key", "value"),
    [("description", "Changed."), ("location", "Elsewhere"), ("source", "other"), ("id", "x-9")],
)
def test_content_hash_changes_with_indexable_content(key: str, value: str) -> None:
    kb = load_knowledge_base(None)
    first = kb.descriptions[0]
    changed = first.model_copy(update={key: value})
    assert content_hash((changed, *kb.descriptions[1:])) != kb.content_hash
    assert content_hash(kb.descriptions[1:]) != kb.content_hash
    assert content_hash(reversed(kb.descriptions)) == kb.content_hash


# --- the starter knowledge base -------------------------------------------------------


def test_starter_kb_meets_its_spec() -> None:
    kb = load_knowledge_base(None)
    assert kb.source == "starter"
    assert 40 <= len(kb) <= 60
    assert len(kb.locations) >= 8
    assert {"China", "India", "Spain", "Thailand", "Ukraine", "Japan"} <= set(kb.locations)
    for location in ("China", "India", "Spain", "Thailand", "Ukraine", "Japan"):
        assert sum(d.location == location for d in kb.descriptions) >= 3
    ids = [d.id for d in kb.descriptions]
    assert len(set(ids)) == len(ids)
    for d in kb.descriptions:
        assert re.fullmatch(r"starter-[a-z]{2}-\d{3}", d.id), d.id
        assert d.source == "culturesafe-starter"
        sentences = len(re.findall(r"[.!?](?:\s|$)", d.description))
        assert 2 <= sentences <= 4, d.id


def test_starter_kb_is_written_in_its_own_words(full_kb: KnowledgeBase) -> None:
    def shingles(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.lower())
        return {tuple(words[i : i + 8]) for i in range(len(words) - 7)}

    dataset = set().union(*(shingles(d.description) for d in full_kb.descriptions))
    for d in load_knowledge_base(None).descriptions:
        assert not shingles(d.description) & dataset, d.id


def test_starter_kb_file_loads_like_any_jsonl(tmp_path: Path) -> None:
    starter = Path(__file__).parents[2] / "retrieval/data/starter.jsonl"
    copy = shutil.copy(starter, tmp_path / "starter.jsonl")
    assert load_knowledge_base(Path(copy)).content_hash == load_knowledge_base(None).content_hash
