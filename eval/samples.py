"""The dataset step: AdaCultureSafe descriptions -> a stable, stratified list of ``Sample``s.

A sample's id is built from the description id, the kind and the item's index, so the same
item has the same id in every run and two runs can be paired item by item. The third kind,
``ordinary`` (everyday prompts, no gold answer), is selected by ``eval/ordinary.py``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from retrieval.models import Description

Kind = Literal["knowledge", "safety", "ordinary"]
# The kinds drawn from the knowledge base (descriptions); ``ordinary`` comes from its own file.
BENCHMARK_KINDS: tuple[Kind, ...] = ("knowledge", "safety")
Variant = Literal["original", "shuffled"]


class Sample(BaseModel):
    """One benchmark item, ready to be sent (``input``) and scored (``target``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    description_id: str
    country: str
    kind: Kind
    variant: Variant = "original"
    index: int
    input: str  # the MCQ question or the safety query text
    options: dict[str, str] | None = None  # knowledge only, in the order shown
    target: str | None = None  # knowledge only: the gold letter(s) after any shuffling
    description: str  # the gold cultural description (for inject-gold and the judge)


class OrdinaryPrompt(BaseModel):
    """One everyday prompt of the ordinary-traffic kind (a line of its JSONL file)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=8000)
    topic: str = Field(default="", max_length=100)
    places: tuple[str, ...] = Field(default=(), max_length=20)  # country names, as the KB


def country_of(description: Description) -> str:
    """The country name used for grouping (the description's location, lower-cased)."""
    return description.location.strip().lower()


def shuffle_options(
    options: dict[str, str], label: str, seed: str
) -> tuple[dict[str, str], str]:
    """Permute an MCQ's option texts with a fixed per-item seed; relabel the gold answer.

    The letters stay in order (A, B, C...) and the texts move, so position bias cannot score.
    """
    letters = list(options)
    texts = [options[letter] for letter in letters]
    order = list(range(len(texts)))
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    random.Random(int.from_bytes(digest, "big")).shuffle(order)
    shuffled = {letters[new]: texts[old] for new, old in enumerate(order)}
    new_of_old = {letters[old]: letters[new] for new, old in enumerate(order)}
    new_label = "".join(sorted(new_of_old.get(ch, ch) for ch in label))
    return shuffled, new_label


def _knowledge_samples(d: Description, limit: int, shuffled: bool, seed: int) -> list[Sample]:
    # model_construct: the fields come from an already validated Description, and a resumed
    # 10k-sample run rebuilds every sample before sending its first request.
    out: list[Sample] = []
    common: dict[str, Any] = {"description_id": d.id, "country": country_of(d), "kind": "knowledge",
              "description": d.description}
    for i, q in [(i, q) for i, q in enumerate(d.knowledge) if q.checked][:limit]:
        base = f"{d.id}:knowledge:{i}"
        out.append(Sample.model_construct(id=base, index=i, input=q.question,
                                          options=dict(q.options), target=q.label, **common))
        if shuffled:
            opts, label = shuffle_options(dict(q.options), q.label, f"{seed}:{base}")
            out.append(Sample.model_construct(id=f"{base}:shuffled", variant="shuffled",
                                              index=i, input=q.question, options=opts,
                                              target=label, **common))
    return out


def _safety_samples(d: Description, limit: int) -> list[Sample]:
    checked = [(i, s) for i, s in enumerate(d.safety) if s.checked][:limit]
    return [
        Sample.model_construct(id=f"{d.id}:safety:{i}", description_id=d.id,
                               country=country_of(d), kind="safety", index=i, input=s.text,
                               description=d.description)
        for i, s in checked
    ]


def stratified_samples(
    descriptions: Sequence[Description],
    *,
    per_kind: int | None,
    countries: Iterable[str] | None = None,
    kinds: Iterable[Kind] = ("knowledge", "safety"),
    shuffled: bool = True,
    seed: int = 0,
) -> list[Sample]:
    """Pick up to ``per_kind`` items of each kind in each country, with a fixed seed.

    Descriptions of a country are visited in a seeded order and all their items taken until
    the quota is met, so knowledge and safety items come from the same descriptions (the
    per-description correlation needs both) and a larger quota extends a smaller one.
    ``per_kind=None`` takes everything.
    """
    wanted = {c.strip().lower() for c in countries} if countries else None
    kinds = tuple(k for k in kinds if k in BENCHMARK_KINDS)
    if not kinds:
        return []
    by_country: dict[str, list[Description]] = {}
    for d in descriptions:
        if wanted is None or country_of(d) in wanted:
            by_country.setdefault(country_of(d), []).append(d)
    samples: list[Sample] = []
    for country in sorted(by_country):
        pool = sorted(by_country[country], key=lambda d: d.id)
        random.Random(f"{seed}:{country}").shuffle(pool)
        left = dict.fromkeys(kinds, per_kind if per_kind is not None else 1 << 62)
        for d in pool:
            if all(n <= 0 for n in left.values()):
                break
            if "knowledge" in left and left["knowledge"] > 0:
                got = _knowledge_samples(d, left["knowledge"], shuffled, seed)
                left["knowledge"] -= sum(s.variant == "original" for s in got)
                samples.extend(got)
            if "safety" in left and left["safety"] > 0:
                got = _safety_samples(d, left["safety"])
                left["safety"] -= len(got)
                samples.extend(got)
    return samples


def known_countries(descriptions: Sequence[Description]) -> set[str]:
    """Every country present in a knowledge base (lower-cased)."""
    return {country_of(d) for d in descriptions}
