"""Answer and judgement parsing, strict vs lenient scoring: every form models produce."""

from __future__ import annotations

import pytest

from eval.scorers import parse_answer, parse_judgement, score_lenient, score_strict

OPTIONS = {"A": "Four", "B": "Six", "C": "Seven", "D": "Eight"}


@pytest.mark.parametrize(
    ("text", "letters", "via"),
    [
        ('{"answer": "B"}', {"B"}, "json"),
        ('{"Answer": "b"}', {"B"}, "json"),
        ('```json\n{"answer": "D"}\n```', {"D"}, "json"),
        ('Sure! {"answer": "C"} is my answer.', {"C"}, "json"),
        ('{"culture_knowledge": "eight is lucky", "answer": "D"}', {"D"}, "json"),
        ('{"answer": "B) Six"}', {"B"}, "json"),
        ('{"answer": "BC"}', {"B", "C"}, "json"),
        ("B", {"B"}, "pattern"),
        ("b", {"B"}, "pattern"),
        ("  B.  ", {"B"}, "pattern"),
        ("Answer: B", {"B"}, "pattern"),
        ("The answer is (C).", {"C"}, "pattern"),
        ("answer: **D**", {"D"}, "pattern"),
        ("(B)", {"B"}, "pattern"),
        ("B) Six", {"B"}, "pattern"),
        ("b) six", {"B"}, "pattern"),
        ("C. Seven, because it is lucky", {"C"}, "pattern"),
        ("B, C", {"B", "C"}, "pattern"),
        ("B and C", {"B", "C"}, "pattern"),
        ("A/B/C/D", {"A", "B", "C", "D"}, "pattern"),
        ("Eight", {"D"}, "option_text"),
        ("garbage", None, "none"),
        ("I am not sure about this one.", None, "none"),
        ("", None, "none"),
        ('{"answer": "Z"}', None, "none"),
        ("Answer: E", None, "none"),
    ],
)
def test_parse_answer_every_form(text: str, letters: set[str] | None, via: str) -> None:
    parsed = parse_answer(text, OPTIONS)
    assert parsed.letters == (frozenset(letters) if letters is not None else None)
    assert parsed.via == via


@pytest.mark.parametrize(
    ("text", "strict", "lenient"),
    [
        ('{"answer": "B"}', True, True),
        ("b", True, False),  # upstream's rule is case-sensitive: it misses a lowercase b
        ("A/B/C/D", False, True),  # the hack upstream credits
        ('{"answer": "A/B/C/D"}', False, True),
        ("B, C", False, True),
        ("garbage with a B inside", False, True),
        ('{"answer": "C"}', False, False),
        ("garbage", False, False),
    ],
)
def test_strict_versus_lenient(text: str, strict: bool, lenient: bool) -> None:
    parsed = parse_answer(text, OPTIONS)
    assert score_strict(parsed, "B") is strict
    assert score_lenient(parsed, "B") is lenient


def test_lenient_looks_in_the_json_answer_not_the_whole_text() -> None:
    parsed = parse_answer('{"culture_knowledge": "B is wrong", "answer": "C"}', OPTIONS)
    assert not score_lenient(parsed, "B")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"respectfulness": 7, "awareness": 3, "rationale": "ok"}', (7, 3)),
        ('```json\n{"respectfulness": "9", "awareness": 8.0}\n```', (9, 8)),
        ("Respectfulness: 8\nAwareness: 2", (8, 2)),
        ('Here: {"Respectfulness": 1, "Awareness": 10}', (1, 10)),
        ('{"respectfulness": 11, "awareness": 3}', None),
        ('{"respectfulness": 0, "awareness": 3}', None),
        ('{"respectfulness": 5}', None),
        ("I cannot judge this.", None),
        ("", None),
    ],
)
def test_parse_judgement(text: str, expected: tuple[int, int] | None) -> None:
    got = parse_judgement(text)
    assert (None if got is None else (got.respectfulness, got.awareness)) == expected
