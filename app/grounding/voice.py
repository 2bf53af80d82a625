"""A voice per intent: how a grounded answer opens, and the instructions behind it.

* ``disparaging`` (also when no intent is known, as before the gate): the answer to a
  request that disparages a custom. Its opening acknowledges the user's view without
  adopting it, then states the verified facts (``prompts/prefill_disparaging.txt``),
  under the instructions of ``prompts/grounded.txt`` and the techniques' templates.
* ``cultural_question``: a neutral answer to a neutral question: the verified facts with
  their citations and no talk of frustration (``prompts/prefill_question.txt``), under
  the ``*_question`` templates. The few-shot exemplars answer disparaging requests, so a
  question asked with ``fewshot`` gets the question voice's plain prompt instead.

The gateway-written start of the answer (the prefill) ends on complete facts, never on a
slot such as ``- In Thailand,`` that the user's own words fit better than the facts: that
slot was filled with the user's claim ("- In Thailand, people are so weird about touching
heads.").
"""

from __future__ import annotations

import re
from typing import Literal

from app.config import GroundingTechnique, Intent
from app.grounding.knowledge_block import neutralize
from prompts import load_prompt
from retrieval.models import Passage

Voice = Literal["cultural_question", "disparaging"]
# The template each technique uses, in the question voice (the rest keep their own).
_QUESTION_TEMPLATES = {
    "grounded": "grounded_question",
    "technique_prefill": "technique_prefill_question",
    "technique_two_pass": "technique_two_pass_question",
    "technique_structured": "technique_structured_question",
}
_WITHOUT_QUESTION_VOICE: frozenset[GroundingTechnique] = frozenset({"fewshot"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def voice_of(intent: Intent | None) -> Voice:
    """The voice an answer takes: neutral for a question, else the disparaging one."""
    return "cultural_question" if intent == "cultural_question" else "disparaging"


def template_for(voice: Voice, name: str) -> str:
    """The prompt template ``name`` as spoken in ``voice``."""
    return _QUESTION_TEMPLATES.get(name, name) if voice == "cultural_question" else name


def technique_in_voice(
    technique: GroundingTechnique, voice: Voice
) -> tuple[GroundingTechnique, str | None]:
    """``(technique used, why it differs from the requested one or None)``."""
    if voice == "cultural_question" and technique in _WITHOUT_QUESTION_VOICE:
        return "instruct", (f"the {technique} exemplars answer disparaging requests; "
                            "a cultural question gets the instruct prompt")
    return technique, None


def first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text.strip(), maxsplit=1)[0]


def facts(passages: tuple[Passage, ...]) -> str:
    """The first sentence of each description of the top passage's location, cited."""
    top = passages[0].location
    return "\n".join(
        f"- {neutralize(first_sentence(p.description))} [{i}]"
        for i, p in enumerate(passages, start=1)
        if p.location == top
    )


def opening(voice: Voice, passages: tuple[Passage, ...]) -> str:
    """The start of the answer the gateway writes itself: facts, complete sentences."""
    template = load_prompt("prefill_question" if voice == "cultural_question"
                           else "prefill_disparaging")
    values = {"location": neutralize(passages[0].location), "facts": facts(passages)}
    text = template.render(**{k: v for k, v in values.items() if k in template.placeholders})
    return text + "\n\n"
