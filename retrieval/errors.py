"""Typed errors of the retrieval package, each with a message a user can act on."""

from __future__ import annotations

from pathlib import Path


class RetrievalError(Exception):
    """Base of every error the retrieval package raises on purpose."""


class KnowledgeBaseError(RetrievalError):
    """A knowledge base that cannot be loaded: names the file, the item and the field.

    Attributes:
        path: the file (or directory) at fault.
        item: the item id, when known.
        line: the 1-based line number (JSONL files), when known.
        field: the offending field, e.g. ``"Cultural Knowledge"[2].label``, when known.
        reason: what is wrong, without the location.
    """

    def __init__(
        self,
        path: Path | str,
        reason: str,
        *,
        item: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.reason = reason
        self.item = item
        self.line = line
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = [str(self.path)]
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.item is not None:
            where.append(f"item {self.item!r}")
        if self.field is not None:
            where.append(f"field {self.field}")
        return f"{', '.join(where)}: {self.reason}"


class DataPullError(RetrievalError):
    """Downloading the public dataset failed (HTTP error, dropped connection, bad manifest)."""


class ChecksumMismatchError(DataPullError):
    """A downloaded file does not have the SHA-256 the manifest promises."""

    def __init__(self, name: str, expected: str, actual: str) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{name}: checksum mismatch (expected sha256 {expected}, got {actual}); "
            "the partial download was deleted, run the command again or check --url"
        )
