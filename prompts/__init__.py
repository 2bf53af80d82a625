"""Prompt templates kept as files, with a tiny loader.

Templates use ``string.Template`` placeholders (``$knowledge``) rather than ``str.format``
braces, so prompt text may contain ``{`` and ``}`` (JSON examples) without escaping.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template


class PromptTemplate:
    """A named template whose placeholders must all be filled when rendered."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self._template = Template(text)
        self.placeholders = frozenset(self._template.get_identifiers())

    def render(self, **values: str) -> str:
        """Fill every placeholder; a missing or unknown one is a programming error."""
        unknown = set(values) - self.placeholders
        if unknown:
            raise KeyError(f"prompt {self.name!r} has no placeholder(s) {sorted(unknown)}")
        return self._template.substitute(values).strip()


@cache
def load_prompt(name: str) -> PromptTemplate:
    """Load ``prompts/<name>.txt`` once (cached) from the installed package."""
    text = resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return PromptTemplate(name, text)
