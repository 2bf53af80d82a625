"""The ``<culture_knowledge>`` block: removed from answers, kept out of streams, and
reserved so that neither user text nor retrieved text can forge or close it.

``split_knowledge`` cleans a whole answer; ``KnowledgeBlockFilter`` does the same for a
stream, holding back text while a block is open (or while a partial tag might be one) so
that not a single character of the block reaches the client. Outside a block, a reserved
tag the model wrote anyway (a stray ``</culture_knowledge>`` after the block closed) is
dropped, and content never ends with the start of one (an answer cut by ``max_tokens``
inside ``<culture_``).
"""

from __future__ import annotations

import re

OPEN_TAG = "<culture_knowledge>"
CLOSE_TAG = "</culture_knowledge>"

_BLOCK = re.compile(r"<culture_knowledge>(.*?)(?:</culture_knowledge>|\Z)", re.DOTALL)
# Our own markup, in any spelling a model would still read as the tag.
_RESERVED_TAG = re.compile(r"<\s*(/?)\s*(culture_knowledge|verified_knowledge)\s*>", re.I)
# Exact spellings, for recognising the start of one at the end of a text.
_TAG_SPELLINGS = tuple(
    f"<{slash}{name}>" for name in ("culture_knowledge", "verified_knowledge")
    for slash in ("", "/")
)
# Chat-template control tokens such as <|im_start|>, which llama.cpp may parse as special.
_SPECIAL_TOKEN = re.compile(r"<\|([^|<>]{0,40})\|>")


def neutralize(text: str) -> str:
    """Defuse our reserved tags and chat-template tokens inside untrusted text."""
    text = _RESERVED_TAG.sub(lambda m: f"&lt;{m.group(1)}{m.group(2)}&gt;", text)
    return _SPECIAL_TOKEN.sub(lambda m: f"<| {m.group(1)} |>", text)


def split_knowledge(content: str) -> tuple[str, str | None]:
    """``(answer, knowledge)``: every block removed from the answer, the first one kept.

    An unclosed block runs to the end of the text (a truncated answer): it is knowledge,
    never answer.
    """
    blocks = [m.group(1).strip() for m in _BLOCK.finditer(content)]
    if not blocks:
        return without_reserved_tags(content), None
    answer = without_reserved_tags(_BLOCK.sub("", content)).strip()
    return answer, blocks[0] or None


def without_reserved_tags(text: str) -> str:
    """``text`` without stray reserved tags and without the start of one at its end."""
    text = _RESERVED_TAG.sub("", text)
    return text[: len(text) - _partial_tag_suffix(text)]


def _partial_tag_suffix(text: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a reserved tag
    (case-insensitive)."""
    tail = text[-max(map(len, _TAG_SPELLINGS)) :].lower()
    for size in range(len(tail), 0, -1):
        if any(tag.startswith(tail[-size:]) and len(tag) > size for tag in _TAG_SPELLINGS):
            return size
    return 0


class KnowledgeBlockFilter:
    """Streaming version of ``split_knowledge`` for one choice's content deltas."""

    def __init__(self) -> None:
        self._pending = ""  # text not yet released: a possible tag start, or an open block
        self._inside = False
        self._knowledge: list[str] = []
        self._seen_block = False
        self._answer_started = False

    @property
    def knowledge(self) -> str | None:
        text = "".join(self._knowledge[:1]).strip()
        return text or None

    def feed(self, text: str) -> str:
        """Take a content delta; return the part that is safe to send now."""
        self._pending += text
        out: list[str] = []
        while True:
            if self._inside:
                end = self._pending.find(CLOSE_TAG)
                if end < 0:
                    return self._emit(out)
                self._knowledge.append(self._pending[:end])
                self._pending = self._pending[end + len(CLOSE_TAG) :]
                self._inside = False
                continue
            start = self._pending.find(OPEN_TAG)
            if start >= 0:
                out.append(_RESERVED_TAG.sub("", self._pending[:start]))
                self._pending = self._pending[start + len(OPEN_TAG) :]
                self._inside = self._seen_block = True
                continue
            text = _RESERVED_TAG.sub("", self._pending)  # a stray tag is never answer
            keep = _partial_tag_suffix(text)
            out.append(text[: len(text) - keep])
            self._pending = text[len(text) - keep :]
            return self._emit(out)

    def finish(self) -> str:
        """End of the stream: a held partial tag is dropped (the answer was cut inside
        it); an unclosed block is knowledge."""
        if self._inside:
            self._knowledge.append(self._pending)
            self._pending = ""
            return ""
        rest, self._pending = self._pending, ""
        return self._emit([without_reserved_tags(rest)])

    def _emit(self, parts: list[str]) -> str:
        text = "".join(parts)
        if not self._answer_started:
            # Whitespace before and right after a block is layout, not answer.
            text = text.lstrip()
            self._answer_started = bool(text)
        return text
