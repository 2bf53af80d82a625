"""Turn one raw record into a :class:`Description`, checking every field by hand.

Two input shapes share the checks: an AdaCultureSafe item (``"Cultural Description"``,
``"Location"``, ``"Cultural Knowledge"``, ``"Cultural Safety"``, keyed by id in a JSON
object) and a line of the simple JSONL format (``id``, ``location``, ``description``,
``source``). Fields are checked explicitly rather than left to pydantic so that a bad
record is reported as one :class:`RecordError` that names the field the way the file
spells it, never as a KeyError or a validation traceback.
"""

from __future__ import annotations

from typing import Any

from retrieval.models import Description, KnowledgeQuestion, SafetyQuery

ADA_DESCRIPTION = "Cultural Description"
ADA_LOCATION = "Location"
ADA_KNOWLEDGE = "Cultural Knowledge"
ADA_SAFETY = "Cultural Safety"


class RecordError(Exception):
    """One record is invalid: ``field`` names where, ``reason`` says what."""

    def __init__(self, field: str | None, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


class DuplicateKeyDict(dict[str, Any]):
    """A JSON object in which some keys appeared more than once (listed in ``duplicates``)."""

    duplicates: tuple[str, ...] = ()


def object_pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` hook that remembers duplicate keys instead of silently dropping values."""
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    flagged = DuplicateKeyDict()
    duplicates = []
    for key, value in pairs:  # the first occurrence wins, as it does across files
        if key in flagged:
            duplicates.append(key)
        else:
            flagged[key] = value
    flagged.duplicates = tuple(duplicates)
    return flagged


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _quoted(name: str) -> str:
    return f'"{name}"'


def _object(value: object, field: str | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(field, f"must be a JSON object, got {_kind(value)}")
    if isinstance(value, DuplicateKeyDict):
        keys = ", ".join(map(repr, dict.fromkeys(value.duplicates)))
        raise RecordError(field, f"duplicate key(s) {keys}")
    return value


def _text(obj: dict[str, Any], key: str, field: str) -> str:
    """A required, non-blank string, stripped of surrounding whitespace."""
    if key not in obj:
        raise RecordError(field, "missing")
    value = obj[key]
    if not isinstance(value, str):
        raise RecordError(field, f"must be a string, got {_kind(value)}")
    stripped = value.strip()
    if not stripped:
        raise RecordError(field, "must not be empty")
    return stripped


def _checked(obj: dict[str, Any], field: str) -> bool:
    """The ``checked`` flag: a boolean or, as upstream writes it, the string "true"/"false"."""
    value = obj.get("checked", True)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise RecordError(field, f'must be true/false or "true"/"false", got {value!r}')


def _label_letters(label: str) -> list[str]:
    """Split a label such as "B", "A,C" or "AC" into option keys."""
    parts = [part for part in label.replace("/", ",").replace(" ", ",").split(",") if part]
    if len(parts) == 1 and len(parts[0]) > 1:
        return list(parts[0])
    return parts


def _question(raw: object, field: str) -> KnowledgeQuestion:
    obj = _object(raw, field)
    question = _text(obj, "question", f"{field}.question")
    options = _object(obj.get("options"), f"{field}.options")
    if len(options) < 2:
        raise RecordError(f"{field}.options", f"needs at least 2 options, got {len(options)}")
    for key, text in options.items():
        # Upstream has 17 empty option texts (an option split at "("): kept, not fatal.
        if not isinstance(text, str):
            raise RecordError(f"{field}.options.{key}", f"must be a string, got {_kind(text)}")
    label = _text(obj, "label", f"{field}.label")
    if label not in options and not all(letter in options for letter in _label_letters(label)):
        raise RecordError(
            f"{field}.label", f"{label!r} is not among the options {', '.join(options)}"
        )
    return KnowledgeQuestion(
        question=question,
        options=dict(options),
        label=label,
        checked=_checked(obj, f"{field}.checked"),
    )


def _safety(raw: object, field: str) -> SafetyQuery:
    obj = _object(raw, field)
    return SafetyQuery(
        scene=_text(obj, "scene", f"{field}.scene"),
        requirement=_text(obj, "requirement", f"{field}.requirement"),
        checked=_checked(obj, f"{field}.checked"),
    )


def _items(obj: dict[str, Any], key: str) -> list[Any]:
    """An optional list of benchmark items (missing or null: none)."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(_quoted(key), f"must be a list, got {_kind(value)}")
    return value


def clean_id(raw_id: object, field: str = "id") -> str:
    """An item id: a non-blank string, stripped."""
    if not isinstance(raw_id, str):
        raise RecordError(field, f"must be a string, got {_kind(raw_id)}")
    stripped = raw_id.strip()
    if not stripped:
        raise RecordError(field, "must not be empty")
    return stripped


def source_from_id(item_id: str) -> str | None:
    """AdaCultureSafe ids start with their source: ``commisceo-item_42-0`` -> ``commisceo``."""
    prefix, dash, _ = item_id.partition("-")
    return (prefix.strip() or None) if dash else None


def qualified_id(location: str, item_id: str) -> str:
    """A dataset-wide id: upstream ids repeat across countries, so prefix the location.

    ``("China", "commisceo-item_42-0")`` -> ``"china/commisceo-item_42-0"``.
    """
    return f"{'_'.join(location.lower().split())}/{item_id}"


def parse_adaculturesafe_item(item_id: str, raw: object) -> Description:
    """One value of an AdaCultureSafe file, keyed by upstream ``item_id`` (already cleaned).

    The description's id is :func:`qualified_id`; its source is the upstream id's prefix.
    """
    obj = _object(raw, None)
    location = _text(obj, ADA_LOCATION, _quoted(ADA_LOCATION))
    knowledge = tuple(
        _question(q, f"{_quoted(ADA_KNOWLEDGE)}[{i}]")
        for i, q in enumerate(_items(obj, ADA_KNOWLEDGE))
    )
    safety = tuple(
        _safety(s, f"{_quoted(ADA_SAFETY)}[{i}]") for i, s in enumerate(_items(obj, ADA_SAFETY))
    )
    return Description(
        id=qualified_id(location, item_id),
        location=location,
        description=_text(obj, ADA_DESCRIPTION, _quoted(ADA_DESCRIPTION)),
        source=source_from_id(item_id),
        knowledge=knowledge,
        safety=safety,
    )


def parse_jsonl_record(raw: object) -> Description:
    """One line of the simple format: ``{"id", "location", "description", "source"?}``."""
    obj = _object(raw, None)
    if "id" not in obj:
        raise RecordError("id", "missing")
    source = obj.get("source")
    if source is not None and not isinstance(source, str):
        raise RecordError("source", f"must be a string or null, got {_kind(source)}")
    return Description(
        id=clean_id(obj["id"]),
        location=_text(obj, "location", "location"),
        description=_text(obj, "description", "description"),
        source=(source or "").strip() or None,
    )
