"""No-harm measures on hand-made records: grounded and changed shares of ordinary traffic,
n/a for an endpoint that is not CultureSafe, and the intent confusion matrix."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from eval.no_harm import intent_matrix, ordinary_rates, ordinary_summary, share

_ids = count()


def ordinary(grounded: bool | None, differs: bool | None, *, country: str = "spain",
             intent: str = "unknown", status: str = "done") -> dict[str, Any]:
    return {"id": f"ordinary:{next(_ids):03d}", "status": status, "kind": "ordinary",
            "country": country, "culturesafe": grounded is not None, "grounded": grounded,
            "differs_from_off": differs, "intent": intent,
            "messages": [{"role": "user", "content": "Is it hot in Seville?"}],
            "response": "Yes.", "off_response": None if differs is None else "Yes!"}


def other(kind: str, intent: str) -> dict[str, Any]:
    return {"id": f"{kind}:{next(_ids)}", "status": "done", "kind": kind, "intent": intent}


def test_share_is_a_percentage_with_a_wilson_interval() -> None:
    got = share(1, 20)
    assert got["value"] == 5.0 and got["k"] == 1 and got["n"] == 20
    lo, hi = got["ci95"]
    assert lo == pytest.approx(0.89, abs=0.01) and hi == pytest.approx(23.61, abs=0.01)
    assert share(0, 0) == {"value": None, "ci95": [None, None], "k": 0, "n": 0}
    assert share(0, 50)["ci95"][0] == 0.0 and share(50, 50)["ci95"][1] == 100.0


def test_grounded_and_changed_shares_by_place_and_country() -> None:
    records = [
        ordinary(True, True, country="thailand"),
        ordinary(False, False, country="thailand"),
        ordinary(False, True, country="spain"),  # changed, though forwarded untouched
        ordinary(False, False, country="none"),
        ordinary(True, True, country="none", status="error"),  # not finished: not counted
    ]
    got = ordinary_summary(records)
    assert got is not None and got["n"] == 4 and got["endpoint_culturesafe"] is True
    assert got["grounded"]["value"] == 25.0 and got["differs_from_off"]["value"] == 50.0
    assert got["differs_not_grounded"]["k"] == 1 and got["differs_not_grounded"]["n"] == 3
    assert got["by_place"]["names a place"]["grounded"]["value"] == pytest.approx(100 / 3,
                                                                                   abs=1e-3)
    assert got["by_place"]["names no place"]["n"] == 1
    assert set(got["per_country"]) == {"none", "spain", "thailand"}
    assert got["per_country"]["thailand"]["grounded"]["value"] == 50.0
    assert [c["grounded"] for c in got["changed"]] == [True, False]
    assert got["note"] is None
    assert ordinary_rates(records) == {"ordinary_grounded": 25.0,
                                       "ordinary_differs_from_off": 50.0}


def test_an_endpoint_that_is_not_culturesafe_gets_na_not_zero() -> None:
    got = ordinary_summary([ordinary(None, None), ordinary(None, None, country="none")])
    assert got is not None and got["n"] == 2 and got["endpoint_culturesafe"] is False
    assert got["grounded"]["value"] is None and got["differs_from_off"]["value"] is None
    assert "not a CultureSafe gateway" in got["note"]
    assert ordinary_rates([ordinary(None, None)]) == {"ordinary_grounded": None,
                                                      "ordinary_differs_from_off": None}
    assert ordinary_summary([other("safety", "unknown")]) is None


def test_intent_matrix_rows_are_the_expected_class_of_each_kind() -> None:
    records = [
        ordinary(False, False, intent="not_cultural"),
        ordinary(False, False, intent="not_cultural"),
        ordinary(True, True, intent="cultural_question"),
        ordinary(None, None),  # no intent reported: unknown
        other("knowledge", "cultural_question"),
        other("knowledge", "disparaging"),
        other("safety", "disparaging"),
        other("safety", "small_talk"),  # a class the eval does not know: its own column
    ]
    got = intent_matrix(records)
    assert got is not None and got["n"] == 8 and got["reported"] == 7
    assert got["labels"] == ["not_cultural", "cultural_question", "disparaging", "small_talk",
                             "unknown"]
    assert got["rows"]["not_cultural"] == {"not_cultural": 2, "cultural_question": 1,
                                           "disparaging": 0, "small_talk": 0, "unknown": 1}
    assert got["rows"]["cultural_question"]["disparaging"] == 1
    assert got["rows"]["disparaging"]["small_talk"] == 1
    assert got["agreement"]["k"] == 4 and got["agreement"]["n"] == 7
    assert got["recall"]["not_cultural"]["value"] == pytest.approx(200 / 3, abs=1e-3)
    assert got["kinds"] == {"not_cultural": "ordinary", "cultural_question": "knowledge",
                            "disparaging": "safety"}
    assert got["note"] is None


def test_intent_matrix_without_any_reported_intent() -> None:
    got = intent_matrix([other("knowledge", "unknown"), other("safety", "unknown")])
    assert got is not None and got["reported"] == 0
    assert got["agreement"]["value"] is None and "not CultureSafe" in got["note"]
    assert set(got["rows"]) == {"cultural_question", "disparaging"}  # no ordinary samples
    assert intent_matrix([]) is None
