"""Load verified cultural descriptions: AdaCultureSafe JSON, simple JSONL, or the starter KB.

One loader serves retrieval (which indexes id, location, description, source) and
evaluation (which also needs the knowledge questions and safety queries). Bad input stops
with a :class:`KnowledgeBaseError` naming the file, the item (or line) and the field;
``skip_invalid=True`` skips bad items instead and counts them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from retrieval.errors import KnowledgeBaseError
from retrieval.kb_records import (
    DuplicateKeyDict,
    RecordError,
    clean_id,
    object_pairs_hook,
    parse_adaculturesafe_item,
    parse_jsonl_record,
)
from retrieval.models import Description

STARTER_SOURCE = "starter"
# Where the full AdaCultureSafe data lies beside a checkout (relative to the repository
# root, the working directory of the CLI, the gateway and the benchmarks).
ADACULTURESAFE_DIR = Path("../shared/data/adaculturesafe")
DATA_SUFFIXES = (".json", ".jsonl")
_HASH_VERSION = b"culturesafe-kb-v1\n"


@dataclass(frozen=True)
class KnowledgeBase:
    """The loaded descriptions, a hash of their indexable content, and where they came from.

    ``skipped_reasons`` holds one message per item skipped with ``skip_invalid=True``.
    """

    descriptions: tuple[Description, ...]
    content_hash: str
    source: str
    skipped: int = 0
    skipped_reasons: tuple[str, ...] = ()
    _by_id: dict[str, Description] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {d.id: d for d in self.descriptions})

    def __len__(self) -> int:
        return len(self.descriptions)

    def by_id(self, item_id: str) -> Description:
        """The description with this id; KeyError if there is none."""
        try:
            return self._by_id[item_id]
        except KeyError:
            raise KeyError(f"no description with id {item_id!r} in {self.source}") from None

    @property
    def locations(self) -> list[str]:
        """The distinct locations, sorted."""
        return sorted({d.location for d in self.descriptions})


def content_hash(descriptions: Iterable[Description]) -> str:
    """SHA-256 over (id, location, description, source) of every description, in id order.

    Changes if and only if what an index holds changes; the order of files or lines and
    the benchmark questions attached to a description do not count.
    """
    rows = sorted(
        ([d.id, d.location, d.description, d.source] for d in descriptions),
        key=lambda row: str(row[0]),
    )
    payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(_HASH_VERSION + payload.encode("utf-8")).hexdigest()


def load_knowledge_base(path: Path | None, *, skip_invalid: bool = False) -> KnowledgeBase:
    """Load a knowledge base.

    Args:
        path: None for the starter knowledge base shipped in the package; a directory for
            every ``*.json`` (AdaCultureSafe) and ``*.jsonl`` (simple) file in it, in name
            order; or one such file.
        skip_invalid: skip and count invalid items instead of stopping at the first one.
            A file that is not valid JSON as a whole still stops the load.

    Raises:
        KnowledgeBaseError: the path, the file, or (unless skipped) an item is invalid.
    """
    collector = _Collector(skip_invalid)
    if path is None:
        starter = resources.files("retrieval").joinpath("data", "starter.jsonl")
        collector.add_jsonl(Path(str(starter)), starter.read_text(encoding="utf-8"))
        return collector.finish(Path(str(starter)), STARTER_SOURCE)
    path = Path(path)
    for data_file in _data_files(path):
        text = _read_text(data_file)
        if data_file.suffix == ".jsonl":
            collector.add_jsonl(data_file, text)
        else:
            collector.add_adaculturesafe(data_file, text)
    return collector.finish(path, str(path))


def _data_files(path: Path) -> list[Path]:
    if not path.exists():
        raise KnowledgeBaseError(path, "does not exist")
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.suffix in DATA_SUFFIXES and p.is_file() and not p.name.startswith(".")
        )
        if not files:
            raise KnowledgeBaseError(
                path, "no data files: expected *.json (AdaCultureSafe) or *.jsonl files"
            )
        return files
    if path.suffix not in DATA_SUFFIXES:
        raise KnowledgeBaseError(path, "not a data file: expected a .json or .jsonl file")
    return [path]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KnowledgeBaseError(path, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise KnowledgeBaseError(path, f"cannot read: {exc.strerror or exc}") from None


def _from_validation(error: ValidationError) -> RecordError:
    """Defensive: a model rule the hand checks missed, reported like any other."""
    first = error.errors()[0]
    return RecordError(".".join(str(part) for part in first["loc"]) or None, first["msg"])


class _Collector:
    """Accumulates descriptions across files; enforces unique ids; skips or raises."""

    def __init__(self, skip_invalid: bool) -> None:
        self.skip_invalid = skip_invalid
        self.descriptions: list[Description] = []
        self.origin: dict[str, str] = {}  # id -> where it was first defined
        self.skipped: list[str] = []

    def _bad(self, error: KnowledgeBaseError) -> None:
        if not self.skip_invalid:
            raise error
        self.skipped.append(str(error))

    def _add(self, description: Description, path: Path, line: int | None) -> None:
        first = self.origin.get(description.id)
        if first is not None:
            self._bad(
                KnowledgeBaseError(
                    path,
                    f"duplicate id (first defined in {first})",
                    item=description.id,
                    line=line,
                    field="id",
                )
            )
            return
        self.origin[description.id] = f"{path}" + (f" line {line}" if line else "")
        self.descriptions.append(description)

    def add_adaculturesafe(self, path: Path, text: str) -> None:
        try:
            data: Any = json.loads(text, object_pairs_hook=object_pairs_hook)
        except json.JSONDecodeError as exc:
            raise KnowledgeBaseError(
                path, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        if not isinstance(data, dict):
            raise KnowledgeBaseError(
                path,
                "expected one JSON object keyed by item id (AdaCultureSafe format), "
                f"got {type(data).__name__}",
            )
        if isinstance(data, DuplicateKeyDict):
            for item_id in data.duplicates:
                self._bad(KnowledgeBaseError(path, "duplicate id in this file", item=item_id))
        for raw_id, raw in data.items():
            try:
                description = parse_adaculturesafe_item(clean_id(raw_id), raw)
            except RecordError as exc:
                self._bad(KnowledgeBaseError(path, exc.reason, item=raw_id, field=exc.field))
                continue
            except ValidationError as exc:
                bad = _from_validation(exc)
                self._bad(KnowledgeBaseError(path, bad.reason, item=raw_id, field=bad.field))
                continue
            self._add(description, path, None)

    def add_jsonl(self, path: Path, text: str) -> None:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw: Any = json.loads(line, object_pairs_hook=object_pairs_hook)
            except json.JSONDecodeError as exc:
                reason = f"malformed JSON at column {exc.colno}: {exc.msg}"
                self._bad(KnowledgeBaseError(path, reason, line=number))
                continue
            item = raw.get("id") if isinstance(raw, dict) else None
            item = item if isinstance(item, str) and item.strip() else None
            try:
                description = parse_jsonl_record(raw)
            except RecordError as exc:
                self._bad(
                    KnowledgeBaseError(path, exc.reason, item=item, line=number, field=exc.field)
                )
                continue
            except ValidationError as exc:
                bad = _from_validation(exc)
                self._bad(
                    KnowledgeBaseError(path, bad.reason, item=item, line=number, field=bad.field)
                )
                continue
            self._add(description, path, number)

    def finish(self, where: Path, source: str) -> KnowledgeBase:
        if not self.descriptions:
            note = f" ({len(self.skipped)} invalid items skipped)" if self.skipped else ""
            raise KnowledgeBaseError(where, f"no descriptions loaded{note}")
        descriptions = tuple(self.descriptions)
        return KnowledgeBase(
            descriptions=descriptions,
            content_hash=content_hash(descriptions),
            source=source,
            skipped=len(self.skipped),
            skipped_reasons=tuple(self.skipped),
        )
