"""The examples the intent gate learns from: a packaged corpus, plus the knowledge base's own.

Three classes (:data:`INTENTS`):

* ``not_cultural``: ordinary traffic, much of it naming a place (weather in Bangkok, a
  visa for Spain, "how do I say thank you in Thai", code, maths, recipes);
* ``cultural_question``: a neutral question about, or a request for help with, a custom;
* ``disparaging``: the user disparages a custom or a people, or asks the model to.

``retrieval/data/intent_train.jsonl`` was written for this project (not taken from any
dataset): ordinary prompts, cultural questions and short disparaging requests over many
countries, in English. ``intent_train_multilingual.jsonl`` holds the same three kinds,
written in 16 other languages; only a gate on a multilingual embedder (the e5 path) learns
from it: on MiniLM, which cannot read those languages, it would only add noise.
When the knowledge base carries AdaCultureSafe items, its knowledge questions
join as cultural questions and its safety queries (``scene requirement``) as disparaging,
a few per description. Cultural examples are grouped by country, so cross-validation
scores them with a model that never saw their country. Ordinary prompts are folded one by
one: their topics (weather, visas, translation...) are the ones users send, and folding
whole topics away (a model that never saw a translation request) pushed the threshold so
high that a third of the dev cultural questions were lost. The held-out sets live in
``bench/sets/intent/`` and are never read here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from retrieval.knowledge_base import KnowledgeBase

NOT_CULTURAL = "not_cultural"
CULTURAL_QUESTION = "cultural_question"
DISPARAGING = "disparaging"
INTENTS = (NOT_CULTURAL, CULTURAL_QUESTION, DISPARAGING)
PACKAGED_FILE = "intent_train.jsonl"
MULTILINGUAL_FILE = "intent_train_multilingual.jsonl"
PACKAGED = "packaged"
# Items taken per description of the knowledge base. Chosen by grouped cross-validation on
# the packaged data plus three AdaCultureSafe countries (BENCHMARKS.md, intent gate):
# more adds embedding time at index build and no out-of-fold accuracy.
KNOWLEDGE_PER_DESCRIPTION = 3
SAFETY_PER_DESCRIPTION = 3
_HASH_VERSION = b"culturesafe-intent-data-v1\n"


@dataclass(frozen=True)
class IntentExample:
    """One labelled text.

    Attributes:
        text: what a user would send.
        intent: one of :data:`INTENTS`.
        group: cross-validation group: ``country:<name>`` for cultural examples (a fold
            never sees the country it is scored on), ``prompt:<id>`` for ordinary ones.
        source: :data:`PACKAGED` or the knowledge base's source.
    """

    text: str
    intent: str
    group: str
    source: str


def packaged_examples(multilingual: bool = False) -> list[IntentExample]:
    """The corpus shipped in the package (``retrieval/data/intent_train.jsonl``), plus its
    other languages (``intent_train_multilingual.jsonl``) when ``multilingual``."""
    files = (PACKAGED_FILE, MULTILINGUAL_FILE) if multilingual else (PACKAGED_FILE,)
    return [example for name in files for example in _corpus(name)]


def _corpus(name: str) -> list[IntentExample]:
    """The examples of one packaged file (``retrieval/data/<name>``)."""
    raw = resources.files("retrieval").joinpath("data", name).read_text("utf-8")
    examples = []
    for row in (json.loads(line) for line in raw.splitlines() if line.strip()):
        intent = str(row["intent"])
        if intent not in INTENTS:
            raise ValueError(f"{name}: unknown intent {intent!r} in {row['id']}")
        group = f"prompt:{row['id']}" if intent == NOT_CULTURAL else f"country:{row['country']}"
        examples.append(IntentExample(str(row["text"]), intent, group, PACKAGED))
    return examples


def knowledge_base_examples(
    kb: KnowledgeBase,
    *,
    knowledge: int = KNOWLEDGE_PER_DESCRIPTION,
    safety: int = SAFETY_PER_DESCRIPTION,
    locations: Iterable[str] | None = None,
) -> list[IntentExample]:
    """The first ``knowledge`` questions and ``safety`` queries of each description.

    Args:
        kb: a knowledge base; descriptions without benchmark items add nothing.
        knowledge, safety: items per description.
        locations: only these locations (case-insensitive); None: all.
    """
    keep = None if locations is None else {name.casefold() for name in locations}
    examples = []
    for description in kb.descriptions:
        if keep is not None and description.location.casefold() not in keep:
            continue
        group = f"country:{description.location}"
        examples += [
            IntentExample(q.question, CULTURAL_QUESTION, group, kb.source)
            for q in description.knowledge[:knowledge]
        ]
        examples += [
            IntentExample(s.text, DISPARAGING, group, kb.source)
            for s in description.safety[:safety]
        ]
    return examples


def training_examples(
    kb: KnowledgeBase | None, multilingual: bool = False
) -> list[IntentExample]:
    """The packaged corpus (its other languages too when ``multilingual``) plus ``kb``'s
    own items (if any)."""
    own = knowledge_base_examples(kb) if kb is not None else []
    return packaged_examples(multilingual) + own


def examples_hash(examples: Sequence[IntentExample], settings: str = "") -> str:
    """SHA-256 over every (intent, group, source, text), in order, and ``settings`` (how
    the gate is fitted on them): the identity a saved gate is checked against."""
    payload = json.dumps(
        [settings, [[e.intent, e.group, e.source, e.text] for e in examples]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(_HASH_VERSION + payload.encode("utf-8")).hexdigest()
