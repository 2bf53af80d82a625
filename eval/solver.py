"""The solver step: a ``Sample`` + a condition -> the messages sent and the target's reply.

Conditions (as the paper's prompt settings, plus our gateway): ``plain`` sends the item as
is; ``elicit`` asks the model to write out its cultural knowledge first; ``inject-gold``
prepends the gold description (an oracle upper bound); ``gateway`` sends the plain item to
our gateway, whose grounding mode travels in the request body.

Ordinary prompts are sent as they are under every condition (they have no custom to elicit
or inject), at temperature 0; :func:`ask_off` sends one again with the gateway's grounding
off, so the two answers can be compared.
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
    if sample.kind == "ordinary":
        return [{"role": "user", "content": sample.input}]
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
    ordinary_max_tokens: int = 128,
) -> tuple[list[dict[str, str]], Completion]:
    """Ask the target one sample; knowledge items request schema-constrained JSON."""
    messages = build_messages(sample, condition)
    if sample.kind == "knowledge":
        schema = answer_schema(sample.options or {}, elicit=condition == "elicit")
        budget = knowledge_max_tokens * (8 if condition == "elicit" else 1)
        completion = await endpoint.complete(messages, max_tokens=budget, schema=schema)
    elif sample.kind == "ordinary":
        completion = await endpoint.complete(messages, max_tokens=ordinary_max_tokens,
                                             overrides={"temperature": 0.0})
    else:
        completion = await endpoint.complete(messages, max_tokens=safety_max_tokens)
    return messages, completion


async def ask_off(
    endpoint: Endpoint, messages: list[dict[str, str]], *, field: str, max_tokens: int
) -> Completion:
    """The same request with the gateway's grounding off (``{field: {"mode": "off"}}`` in
    the body), at temperature 0: the answer the user would have got without CultureSafe."""
    return await endpoint.complete(messages, max_tokens=max_tokens,
                                   overrides={"temperature": 0.0, field: {"mode": "off"}})
