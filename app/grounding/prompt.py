"""The conversation as sent upstream: our grounding prompt in, untrusted text defused.

The retrieved descriptions are rendered with ``prompts/knowledge_entry.txt`` into the
mode's template (``prompts/<mode>.txt`` or a technique's own). The client's system message
is kept verbatim: grounding adds to it (``prompts/client_system.txt``), never replaces it.
Every other message has our reserved tags and chat-template tokens neutralised.
"""

from __future__ import annotations

from typing import Any

from app.config import GroundingMode
from app.grounding.knowledge_block import neutralize
from prompts import load_prompt
from retrieval.models import Passage


def neutralized_message(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with its text neutralised, unless it is the application's own."""
    content = message.get("content")
    if message.get("role") in ("system", "developer"):
        return message  # the application's own instructions are trusted and kept verbatim
    if isinstance(content, str):
        return {**message, "content": neutralize(content)}
    if isinstance(content, list):
        parts = [
            {**p, "text": neutralize(p["text"])}
            if isinstance(p, dict) and isinstance(p.get("text"), str)
            else p
            for p in content
        ]
        return {**message, "content": parts}
    return message


def grounded_messages(
    messages: list[dict[str, Any]],
    mode: GroundingMode,
    passages: tuple[Passage, ...],
    template_name: str | None = None,
) -> list[dict[str, Any]]:
    """The conversation with our system prompt added (merged into the client's, if any)."""
    entry = load_prompt("knowledge_entry")
    knowledge = "\n".join(
        entry.render(
            index=str(i), location=neutralize(p.location), description=neutralize(p.description)
        )
        for i, p in enumerate(passages, start=1)
    )
    template = load_prompt(template_name or mode)
    grounding = (
        template.render(knowledge=knowledge)
        if "knowledge" in template.placeholders
        else template.render()
    )
    rest = [neutralized_message(m) for m in messages]
    first = rest[0] if rest else {}
    if first.get("role") == "system" and isinstance(first.get("content"), str):
        merged = load_prompt("client_system").render(grounding=grounding, client=first["content"])
        return [{**first, "content": merged}, *rest[1:]]
    return [{"role": "system", "content": grounding}, *rest]
