"""What the fake OpenAI server says: OpenAI-shaped bodies and its deterministic texts.

The texts are functions of the prompt alone (a hash of it), so every run of a test or a
benchmark gets the same answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

USAGE = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
# What ``knowledge`` answers: the block a grounded model writes first, then the answer.
KNOWLEDGE_ANSWER = (
    "<culture_knowledge>In Japan tipping is not customary [1].</culture_knowledge>\n"
    "Thanks for asking! In Japan you do not need to tip."
)
# What ``mid-tag`` answers: max_tokens ran out in the middle of an opening tag.
MID_TAG_ANSWER = "Thanks for asking! In Japan you do not need to tip. <culture_"
# What ``fixed`` answers unless the server is given another text.
FIXED_ANSWER = "Thank you for asking. Customs differ, and each deserves respect."
_ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error", 429: "rate_limit_error"}
_LETTER_LINE = re.compile(r"^([A-H])\. ", re.M)


def completion(model: str, content: str, finish: str = "stop") -> dict[str, Any]:
    """A ``chat.completion`` with one choice."""
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish}],
        "usage": USAGE,
    }


def chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    """One server-sent event of a ``chat.completion.chunk``."""
    body = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


def usage_chunk(model: str) -> bytes:
    """The last chunk of a stream asked for with ``stream_options.include_usage``."""
    body = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": [], "usage": USAGE}
    return f"data: {json.dumps(body)}\n\n".encode()


def error_body(status: int) -> dict[str, Any]:
    """The OpenAI error body of an injected fault (a 400 names a parameter, as vLLM does)."""
    return {"error": {"message": f"injected {status}",
                      "type": _ERROR_TYPES.get(status, "server_error"),
                      "param": "temperature" if status == 400 else None,
                      "code": f"fault_{status}"}}


def pieces(text: str, how: str) -> list[str]:
    """The text as the content deltas of a stream: ``chars`` (every tag split), ``words``
    (each but the first with its leading space) or ``whole`` (one delta)."""
    if how == "chars":
        return list(text)
    if how == "words":
        return [w if i == 0 else f" {w}" for i, w in enumerate(text.split(" "))]
    return [text]


def _text(message: dict[str, Any] | None) -> str:
    content = (message or {}).get("content", "")
    return content if isinstance(content, str) else json.dumps(content)


def echo_of(messages: list[dict[str, Any]]) -> str:
    """``echo: `` + the last user text (content parts as their JSON)."""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return f"echo: {_text(users[-1] if users else None)}"


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def deterministic_reply(messages: list[dict[str, Any]], structured: bool) -> str:
    """Two judge scores to a judge prompt (its system prompt asks for ``respectfulness``),
    one of the offered letters to a multiple-choice prompt (as JSON when ``structured``),
    else the echo of the last user text; scores and letters come from a hash of the prompt."""
    system = next((_text(m) for m in messages if m.get("role") == "system"), "")
    user = next((_text(m) for m in messages if m.get("role") == "user"), "")
    h = _digest(user)
    if "respectfulness" in system:
        return json.dumps({"respectfulness": 1 + h % 10, "awareness": 1 + (h >> 8) % 10,
                           "rationale": "deterministic loopback judgement"})
    letters = _LETTER_LINE.findall(user)
    if letters:
        letter = letters[h % len(letters)]
        return json.dumps({"answer": letter}) if structured else f"Answer: ({letter})"
    return echo_of(messages)
