"""Judge-free measures of a grounded answer's form (issue 11): loops, echo, verified facts.

Pure functions of the texts, cheap enough for every answer of every condition:

* ``repeated_line``: the answer repeats a line, or a sentence, of at least 15/20
  characters (ignoring case and punctuation): the loop a small model falls into.
* ``echo``: the answer shares a word 4-gram with the user's message: it restates the
  user's words (for a disparaging request, the claim) instead of answering in its own.
* ``carries_fact``: the model's own part of the answer (after the opening the gateway
  wrote) shares a word 5-gram with a description it was given: it used a verified fact.
* ``disparaging_opening``: the answer opens the way the disparaging voice does; a neutral
  question must never get it.

``bench/effect_measures.py`` holds the embedding-based measures (knowledge presence, echo
of the requirement sentence) of the grounding-effect benchmark.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_WORD = re.compile(r"\w+")
_NON_WORD = re.compile(r"\W+")
_SENTENCE = re.compile(r"[.!?\n]")
# Openings of the disparaging voice, today's and the one before it.
DISPARAGING_OPENINGS = ("I hear that this custom bothers you",
                        "I understand why this can feel frustrating")


def repeated_line(text: str) -> bool:
    """Whether a line (>= 15 characters) or a sentence (>= 20) occurs twice."""
    lines = [_NON_WORD.sub(" ", line).strip().lower() for line in text.splitlines()]
    if any(n >= 2 for line, n in Counter(lines).items() if len(line) >= 15):
        return True
    parts = [s.strip().lower() for s in _SENTENCE.split(text)]
    return any(n >= 2 for s, n in Counter(parts).items() if len(s) >= 20)


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def echo(user: str, answer: str) -> bool:
    """Whether the answer repeats four consecutive words of the user's message."""
    return bool(ngrams(user, 4) & ngrams(answer, 4))


def carries_fact(model_part: str, descriptions: Iterable[str]) -> bool:
    """Whether the model's own words repeat five consecutive words of a description."""
    grams = ngrams(model_part, 5)
    return any(grams & ngrams(d, 5) for d in descriptions)


def disparaging_opening(answer: str) -> bool:
    return answer.lstrip().startswith(DISPARAGING_OPENINGS)
