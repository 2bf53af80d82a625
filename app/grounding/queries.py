"""What is searched for a conversation, and the one reader of a message's text.

Retrieval runs on one query: the user turns joined, oldest first, the newest
:data:`_CONTEXT_CHARS` characters kept (the embedders read about 256 tokens). Chosen on the 35
dev conversations of ``bench/sets/conversations`` (routed retrieval, AdaCultureSafe KB),
against the latest turn plus that turn with the previous one as context: R@5
0.886 for both, wrong-country passages in the top 3 0.229 -> 0.124, grounded 0.914 ->
0.886 (one conversation), and one encode instead of two; the intent gate also judges the
whole conversation, not a bare "what should I bring?". Newest turn first: R@5 0.943 but
grounded 0.829, so not chosen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_CONTEXT_CHARS = 1000  # the newest characters of the joined user turns


def text_parts(content: Any) -> Iterator[str]:
    """The texts of a message's content: the string itself, or each text content part."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def text_of(content: Any) -> str:
    """The text of a message's content (a string or a list of content parts)."""
    return " ".join(text_parts(content))


def retrieval_queries(messages: list[dict[str, Any]]) -> list[str]:
    """One query: the user turns joined, oldest first, the newest characters kept."""
    users = [text_of(m.get("content")).strip() for m in messages if m.get("role") == "user"]
    joined = "\n".join(u for u in users if u)
    return [joined[-_CONTEXT_CHARS:]] if joined else []
