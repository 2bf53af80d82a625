"""Reading a technique's reply back as ``<culture_knowledge>`` block plus answer.

Every technique's reply is turned into the text the plain ``grounded`` prompt would have
produced (block first, then the answer), so the existing block splitter and stream filter
(:mod:`app.grounding.knowledge_block`) do the rest: the block goes to the grounding
details, the answer (with a prefill's respectful opening) to ``content``.
"""

from __future__ import annotations

import json
import re

from app.grounding.knowledge_block import CLOSE_TAG, OPEN_TAG, neutralize
from app.grounding.techniques.prompting import TechniquePlan


def _json_field(text: str, name: str) -> str | None:
    """A string field of a JSON object, also from a reply cut off by ``max_tokens``."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get(name), str):
            return str(data[name])
    except ValueError:
        pass
    match = re.search(rf'"{name}"\s*:\s*"((?:[^"\\]|\\.)*)', text, re.DOTALL)
    if match is None:
        return None
    raw = match.group(1).rstrip("\\")
    try:
        return str(json.loads(f'"{raw}"'))
    except ValueError:
        return raw


def _block(knowledge: str) -> str:
    return f"{OPEN_TAG}\n{neutralize(knowledge.strip())}\n{CLOSE_TAG}\n\n"


def technique_text(plan: TechniquePlan | None, content: str) -> str:
    """The reply of ``plan``'s request as block plus answer (unchanged without a plan)."""
    if plan is None:
        return content
    if plan.prefill is not None:
        # llama.cpp returns the prefill with its continuation; vLLM the continuation only.
        return content if content.startswith(plan.prefill) else plan.prefill + content
    if plan.statement is not None:
        return _block(plan.statement) + content
    if plan.structured:
        answer = _json_field(content, "answer")
        if answer is None:
            return content  # not JSON at all: show what the model wrote
        knowledge = _json_field(content, "knowledge")
        return (_block(knowledge) if knowledge else "") + neutralize(answer.strip())
    return content


class TechniqueStreamFilter:
    """``technique_text`` for one choice's stream of content deltas."""

    def __init__(self, plan: TechniquePlan) -> None:
        self._plan = plan
        self._held = ""
        self._started = False

    def feed(self, text: str) -> str:
        """Take a delta; return what can be passed on (to the knowledge-block filter)."""
        plan = self._plan
        if plan.structured:
            self._held += text  # JSON is only readable whole: released at the end
            return ""
        if self._started:
            return text
        if plan.prefill is not None:
            self._held += text
            if len(self._held) < len(plan.prefill) and plan.prefill.startswith(self._held):
                return ""  # may be the upstream echoing the prefill: wait and see
            self._started = True
            held, self._held = self._held, ""
            return technique_text(plan, held)
        if plan.statement is not None:
            self._started = True
            return technique_text(plan, text)
        return text

    def finish(self) -> str:
        """End of the stream: whatever is still held, read as a whole reply."""
        plan = self._plan
        if plan.structured:
            held, self._held = self._held, ""
            return technique_text(plan, held)
        if self._started:
            return ""
        self._started = True
        if plan.prefill is not None and plan.prefill.startswith(self._held):
            self._held = ""  # an echoed (part of the) prefill and nothing more
        held, self._held = self._held, ""
        return technique_text(plan, held)
