"""Prompt templates kept as files, and the one loader of them (gateway and evaluation).

Templates use ``string.Template`` placeholders (``$knowledge``) rather than ``str.format``
braces, so prompt text may contain ``{`` and ``}`` (JSON examples) without escaping. A line
``{{> name}}`` includes the partial ``prompts/partials/<name>.txt``, so text shared by
several templates (the verified-knowledge preamble) is written once. Data files that go
with the prompts (the few-shot exemplars) are read here too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from string import Template
from typing import Any

_INCLUDE = re.compile(r"^\{\{>\s*(\w+)\s*\}\}$", re.MULTILINE)


def _read(path: str) -> str:
    return resources.files(__name__).joinpath(path).read_text(encoding="utf-8")


def _expand(text: str) -> str:
    """``text`` with every ``{{> name}}`` line replaced by that partial (recursively)."""
    return _INCLUDE.sub(lambda m: _expand(_read(f"partials/{m.group(1)}.txt")).strip("\n"), text)


class PromptTemplate:
    """A named template whose placeholders must all be filled when rendered.

    The file's surrounding white space is not part of the template; values are put in
    verbatim.
    """

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text.strip()
        self._template = Template(self.text)
        self.placeholders = frozenset(self._template.get_identifiers())

    def render(self, **values: str) -> str:
        """Fill every placeholder; a missing or unknown one is a programming error."""
        unknown = set(values) - self.placeholders
        if unknown:
            raise KeyError(f"prompt {self.name!r} has no placeholder(s) {sorted(unknown)}")
        return self._template.substitute(values)


@cache
def load_prompt(name: str) -> PromptTemplate:
    """Load ``prompts/<name>.txt`` once (cached) from the installed package."""
    return PromptTemplate(name, _expand(_read(f"{name}.txt")))


def render(name: str, **values: str) -> str:
    """``load_prompt(name).render(**values)``."""
    return load_prompt(name).render(**values)


def prompts_digest(names: Iterable[str]) -> str:
    """A short hash of the named templates (as rendered from, partials included), recorded
    with results so that a changed prompt is seen."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + load_prompt(name).text.encode() + b"\0")
    return digest.hexdigest()[:16]


@cache
def load_jsonl(name: str) -> tuple[dict[str, Any], ...]:
    """The rows of ``prompts/<name>.jsonl`` (data that goes with a prompt), read once."""
    return tuple(json.loads(line) for line in _read(f"{name}.jsonl").splitlines() if line.strip())
