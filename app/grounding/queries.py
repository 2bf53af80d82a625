"""What is searched for a conversation, and the one reader of a message's text.

Retrieval runs on the latest user turn, and on that turn with the previous user turn as
context (to resolve "what about there?"); the better score of a passage wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_CONTEXT_CHARS = 400  # earlier-turn text added to the retrieval query


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
    """The latest user turn alone, and with the previous user turn as context."""
    users = [text_of(m.get("content")).strip() for m in messages if m.get("role") == "user"]
    users = [u for u in users if u]
    if not users:
        return []
    queries = [users[-1]]
    if len(users) > 1:
        queries.append(f"{users[-2][-_CONTEXT_CHARS:]}\n{users[-1]}")
    return queries
