"""The solver step: a ``Sample`` + a condition -> the messages sent and the target's reply.

Conditions (as the paper's prompt settings, plus our gateway): ``plain`` sends the item as
is; ``elicit`` asks the model to write out its cultural knowledge first; ``inject-gold``
prepends the gold description (an oracle upper bound); ``gateway`` sends the plain item to
our gateway, whose grounding mode travels in the request body.
"""

from __future__ import annotations

from typing import Any, Literal

from eval.endpoint import Completion, Endpoint
from eval.samples import Sample
from prompts import render

Condition = Literal["plain", "elicit", "inject-gold", "gateway"]
CONDITIONS: tuple[Condition, ...] = ("plain", "elicit", "inject-gold", "gateway")


def answer_schema(options: dict[str, str], elicit: bool) -> dict[str, Any]:
    """JSON schema of a knowledge answer: one of the option letters."""
    props: dict[str, Any] = {"answer": {"type": "string", "enum": list(options)}}
    required = ["answer"]
    if elicit:
        props = {"culture_knowledge": {"type": "string", "maxLength": 600}, **props}
        required = ["culture_knowledge", "answer"]
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}


def build_messages(sample: Sample, condition: Condition) -> list[dict[str, str]]:
    """The chat messages for one sample under one condition (always a single user turn)."""
    if sample.kind == "knowledge":
        options = "\n".join(f"{k}. {v}" for k, v in (sample.options or {}).items())
        name = "eval_elicit_knowledge" if condition == "elicit" else "eval_knowledge"
        prompt = render(name, question=sample.input, options=options)
    elif condition == "elicit":
        prompt = render("eval_elicit_safety", query=sample.input)
    else:
        prompt = sample.input
    if condition == "inject-gold":
        prompt = render("eval_inject_gold", description=sample.description, prompt=prompt)
    return [{"role": "user", "content": prompt}]


async def solve(
    endpoint: Endpoint,
    sample: Sample,
    condition: Condition,
    *,
    knowledge_max_tokens: int,
    safety_max_tokens: int,
) -> tuple[list[dict[str, str]], Completion]:
    """Ask the target one sample; knowledge items request schema-constrained JSON."""
    messages = build_messages(sample, condition)
    if sample.kind == "knowledge":
        schema = answer_schema(sample.options or {}, elicit=condition == "elicit")
        budget = knowledge_max_tokens * (8 if condition == "elicit" else 1)
        completion = await endpoint.complete(messages, max_tokens=budget, schema=schema)
    else:
        completion = await endpoint.complete(messages, max_tokens=safety_max_tokens)
    return messages, completion
