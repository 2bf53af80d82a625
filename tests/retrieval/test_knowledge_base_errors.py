"""Bad knowledge-base input stops with a KnowledgeBaseError naming file, item and field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from retrieval.errors import KnowledgeBaseError
from retrieval.knowledge_base import load_knowledge_base


def _ada_item(description: str = "A custom.") -> dict[str, Any]:
    return {
        "Cultural Description": description,
        "Location": "Testland",
        "Cultural Knowledge": [
            {"question": "Q?", "options": {"A": "x", "B": "y"}, "label": "B", "checked": "true"}
        ],
        "Cultural Safety": [{"scene": "S.", "requirement": "R.", "checked": "true"}],
    }


def _write(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def _error(path: Path, **kwargs: Any) -> KnowledgeBaseError:
    with pytest.raises(KnowledgeBaseError) as caught:
        load_knowledge_base(path, **kwargs)
    return caught.value


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda item: item.__setitem__(key, value)


def _set_question(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda item: item["Cultural Knowledge"][0].__setitem__(key, value)


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda item: item.pop("Cultural Description"), '"Cultural Description"', "missing"),
        (_set("Cultural Description", "   "), '"Cultural Description"', "must not be empty"),
        (_set("Location", 7), '"Location"', "must be a string, got int"),
        (_set("Location", None), '"Location"', "got null"),
        (_set("Cultural Knowledge", "many"), '"Cultural Knowledge"', "must be a list"),
        (_set("Cultural Safety", [3]), '"Cultural Safety"[0]', "must be a JSON object"),
        (
            lambda item: item["Cultural Safety"][0].pop("scene"),
            '"Cultural Safety"[0].scene',
            "missing",
        ),
        (_set_question("label", "E"), '"Cultural Knowledge"[0].label', "not among the options"),
        (_set_question("label", ""), '"Cultural Knowledge"[0].label', "must not be empty"),
        (_set_question("options", ["x", "y"]), '"Cultural Knowledge"[0].options', "JSON object"),
        (_set_question("options", {"A": "x"}), '"Cultural Knowledge"[0].options', "at least 2"),
        (_set_question("options", {"A": "x", "B": 2}), '"Cultural Knowledge"[0].options.B', "int"),
        (_set_question("checked", "maybe"), '"Cultural Knowledge"[0].checked', "'maybe'"),
        (lambda item: item["Cultural Knowledge"][0].pop("question"), "[0].question", "missing"),
    ],
)
def test_invalid_adaculturesafe_item_names_file_item_and_field(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], field: str, reason: str
) -> None:
    item = _ada_item()
    mutate(item)
    path = _write(tmp_path / "country.json", {"good-1": _ada_item(), "bad-2": item})
    error = _error(tmp_path)
    assert (error.path, error.item) == (path, "bad-2")
    assert error.field is not None and field in error.field
    assert reason in error.reason
    assert str(path) in str(error) and "'bad-2'" in str(error) and field in str(error)


def test_item_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.json", {"bad-1": ["not", "an", "object"]})
    error = _error(path)
    assert (error.item, error.reason) == ("bad-1", "must be a JSON object, got list")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a-1": {"Location": "X",', "malformed JSON at line 1"),
        ('[{"Location": "X"}]', "expected one JSON object keyed by item id"),
        ("\xff\xfe", "not UTF-8"),
    ],
)
def test_malformed_json_file_names_the_file(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(text.encode("latin-1"))
    error = _error(tmp_path)
    assert error.path == path and reason in str(error)
    # skipping invalid items does not paper over a file that cannot be parsed at all
    assert reason in str(_error(tmp_path, skip_invalid=True))


def test_duplicate_id_within_one_file(tmp_path: Path) -> None:
    item = json.dumps(_ada_item())
    path = tmp_path / "dup.json"
    path.write_text(f'{{"x-1": {item}, "x-2": {item}, "x-1": {item}}}', encoding="utf-8")
    error = _error(path)
    assert (error.path, error.item) == (path, "x-1")
    assert "duplicate id" in error.reason
    kb = load_knowledge_base(path, skip_invalid=True)
    assert (len(kb), kb.skipped) == (2, 1)


def test_duplicate_key_inside_an_item(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{"x-1": {"Location": "A", "Location": "B"}}', encoding="utf-8")
    error = _error(path)
    assert error.item == "x-1" and "duplicate key(s) 'Location'" in error.reason


def test_duplicate_id_across_files_names_both(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.json", {"x-1": _ada_item("One.")})
    second = _write(tmp_path / "b.json", {"x-1": _ada_item("Two.")})
    error = _error(tmp_path)
    assert (error.path, error.item, error.field) == (second, "testland/x-1", "id")
    assert f"first defined in {first}" in error.reason
    kb = load_knowledge_base(tmp_path, skip_invalid=True)
    assert kb.by_id("testland/x-1").description == "One."  # the first file wins
    assert kb.skipped == 1


@pytest.mark.parametrize(
    ("line", "field", "item", "reason"),
    [
        ('{"id": "a-1", "location": "X", "description": "D."', None, None, "malformed JSON"),
        ('{"id": "a-1", "description": "D."}', "location", "a-1", "missing"),
        ('{"id": "a-1", "location": "X", "description": ["D."]}', "description", "a-1", "list"),
        ('{"id": "a-1", "location": "X", "description": "D.", "source": 3}', "source", "a-1", ""),
        ('{"location": "X", "description": "D."}', "id", None, "missing"),
        ('{"id": 12, "location": "X", "description": "D."}', "id", None, "got int"),
        ('{"id": "first-1", "location": "X", "description": "Again."}', "id", "first-1", "dup"),
        ('"just a string"', None, None, "must be a JSON object"),
    ],
)
def test_invalid_jsonl_line_names_file_line_id_and_field(
    tmp_path: Path, line: str, field: str | None, item: str | None, reason: str
) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"id": "first-1", "location": "X", "description": "Fine."}\n\n' + line + "\n",
        encoding="utf-8",
    )
    error = _error(path)
    assert (error.path, error.line, error.field, error.item) == (path, 3, field, item)
    assert reason in error.reason
    assert str(error).startswith(f"{path}, line 3")
    kb = load_knowledge_base(path, skip_invalid=True)
    assert (len(kb), kb.skipped) == (1, 1)
    assert kb.skipped_reasons == (str(error),)


def test_skip_invalid_counts_every_skipped_item(tmp_path: Path) -> None:
    bad = _ada_item()
    bad["Cultural Knowledge"][0]["label"] = "Z"
    _write(tmp_path / "a.json", {"ok-1": _ada_item(), "bad-1": bad, "bad-2": 5})
    (tmp_path / "b.jsonl").write_text('{"id": "ok-2", "location": "X", "description": "D."}\n{')
    kb = load_knowledge_base(tmp_path, skip_invalid=True)
    assert [d.id for d in kb.descriptions] == ["testland/ok-1", "ok-2"]
    assert kb.skipped == 3
    assert any("'bad-1'" in reason and ".label" in reason for reason in kb.skipped_reasons)


def test_all_items_invalid_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    _write(tmp_path / "a.json", {"bad-1": 5})
    error = _error(tmp_path, skip_invalid=True)
    assert error.path == tmp_path
    assert "no descriptions loaded (1 invalid items skipped)" in str(error)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda root: root / "missing", "does not exist"),
        (lambda root: root, "no data files"),
        (lambda root: (root / "notes.txt").write_text("x") and root, "no data files"),
        (lambda root: (root / "kb.csv").write_text("x") and root / "kb.csv", "not a data file"),
        (lambda root: (root / "e.json").write_text("{}") and root, "no descriptions loaded"),
        (lambda root: (root / "e.jsonl").write_text("\n") and root, "no descriptions loaded"),
    ],
)
def test_unusable_paths_are_named(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    path = make(tmp_path)
    error = _error(path)
    assert error.path == path and reason in str(error) and str(path) in str(error)
