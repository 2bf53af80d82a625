"""The evaluation's prompt templates, read once from ``prompts/eval_*.txt`` and
``prompts/judge_*.txt`` (``${name}`` placeholders, so JSON braces need no escaping)."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from string import Template

EVAL_PROMPTS = (
    "eval_knowledge",
    "eval_elicit_knowledge",
    "eval_elicit_safety",
    "eval_inject_gold",
    "judge_system",
    "judge_user",
)


@cache
def template(name: str) -> Template:
    """The template ``prompts/<name>.txt``."""
    text = resources.files("prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return Template(text.strip())


def render(name: str, **fields: str) -> str:
    """Fill a template; a missing placeholder is a bug, so it raises ``KeyError``."""
    return template(name).substitute(**fields)


@cache
def prompts_digest() -> str:
    """A short hash of every template, recorded in the manifest so a changed prompt is seen."""
    digest = hashlib.sha256()
    for name in EVAL_PROMPTS:
        digest.update(name.encode() + b"\0" + template(name).template.encode() + b"\0")
    return digest.hexdigest()[:16]
