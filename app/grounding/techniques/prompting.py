"""Requests per grounded technique: which messages, which extra body fields.

* ``instruct``: the grounded system prompt alone (the model is asked to write the block).
* ``prefill``: the gateway writes the start of the answer itself, the knowledge block built
  from the verified descriptions plus the opening of the request's voice, which ends on
  complete verified facts (:mod:`app.grounding.voice`); the model continues it. llama.cpp
  continues a final assistant message on its own; vLLM needs
  ``continue_final_message: true`` and ``add_generation_prompt: false``.
* ``two-pass``: pass one is a knowledge statement from the retrieved descriptions (built
  here, without a model call, so small models cannot garble it); pass two answers from it,
  told to keep the user's opinion apart from the facts.
* ``structured``: a JSON schema ``{knowledge, answer}`` forces both parts to exist.
* ``fewshot``: short exemplars in this project's own words (``prompts/fewshot_*.jsonl``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.config import GroundingTechnique
from app.grounding.knowledge_block import CLOSE_TAG, OPEN_TAG, neutralize
from app.grounding.voice import Voice, opening
from prompts import load_jsonl
from retrieval.models import Passage

Messages = list[dict[str, Any]]
WithTemplate = Callable[[str], Messages]  # template name -> the conversation with it added

VLLM_CONTINUE: dict[str, Any] = {"continue_final_message": True, "add_generation_prompt": False}
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "knowledge": {"type": "string", "maxLength": 300},
        "answer": {"type": "string"},
    },
    "required": ["knowledge", "answer"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class TechniquePlan:
    """What one technique sends upstream and how its reply is read back."""

    technique: GroundingTechnique
    messages: Messages
    extra_body: dict[str, Any] = field(default_factory=dict)
    prefill: str | None = None  # the assistant text the model continues (block + opening)
    opening: str | None = None  # the part of the prefill that belongs to the answer
    statement: str | None = None  # two-pass: the knowledge statement of pass one
    structured: bool = False
    fallback_messages: Messages | None = None  # prompt-only request if the upstream refuses


def knowledge_lines(passages: tuple[Passage, ...]) -> str:
    """The retrieved descriptions as ``[n] text`` lines (neutralised: untrusted tags)."""
    return "\n".join(
        f"[{i}] {neutralize(p.description)}" for i, p in enumerate(passages, start=1)
    )


def prefill_text(passages: tuple[Passage, ...], voice: Voice) -> tuple[str, str]:
    """``(prefill, opening)``: the knowledge block and the voice's opening after it."""
    start = opening(voice, passages)
    block = f"{OPEN_TAG}\n{knowledge_lines(passages)}\n{CLOSE_TAG}\n\n"
    return block + start, start


def exemplars() -> tuple[tuple[str, str], ...]:
    """The few-shot pairs ``(user, assistant)`` from ``prompts/fewshot_exemplars.jsonl``."""
    return tuple((str(r["user"]), str(r["assistant"])) for r in load_jsonl("fewshot_exemplars"))


def _with_exemplars(messages: Messages) -> Messages:
    shots: Messages = []
    for user, assistant in exemplars():
        shots += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    head = 1 if messages and messages[0].get("role") == "system" else 0
    return [*messages[:head], *shots, *messages[head:]]


def build_technique(
    technique: GroundingTechnique,
    passages: tuple[Passage, ...],
    with_template: WithTemplate,
    *,
    ends_with_assistant: bool = False,
    voice: Voice = "disparaging",
) -> TechniquePlan | None:
    """The request for ``technique`` (``None``: the plain ``grounded`` prompt applies).

    A conversation that already ends with an assistant message (the client's own prefill)
    keeps the plain prompt: two prefills cannot both be continued. ``with_template`` puts
    the template in ``voice`` (:func:`app.grounding.voice.template_for`); ``voice`` picks
    the prefill's opening.
    """
    if technique == "instruct" or not passages:
        return None
    if technique == "prefill" and not ends_with_assistant:
        prefill, start = prefill_text(passages, voice)
        messages = [*with_template("technique_prefill"), {"role": "assistant", "content": prefill}]
        return TechniquePlan(technique, messages, dict(VLLM_CONTINUE), prefill=prefill,
                             opening=start, fallback_messages=with_template("grounded"))
    if technique == "two-pass":
        return TechniquePlan(technique, with_template("technique_two_pass"),
                             statement=knowledge_lines(passages))
    if technique == "structured":
        fmt = {"type": "json_schema",
               "json_schema": {"name": "grounded_answer", "schema": ANSWER_SCHEMA,
                               "strict": True}}
        return TechniquePlan(technique, with_template("technique_structured"),
                             {"response_format": fmt}, structured=True,
                             fallback_messages=with_template("grounded"))
    if technique == "fewshot":
        return TechniquePlan(technique, _with_exemplars(with_template("technique_fewshot")))
    return None
