"""The dataset step of ordinary traffic: everyday prompts -> ``Sample``s of kind ``ordinary``.

Most of what a drop-in gateway sees is not about culture at all, yet names a place ("Is
it humid in Hanoi in March?"). The no-harm measures (``eval/no_harm.py``) ask whether
such prompts are left alone. The prompts come from, in order of precedence, the run's
``ordinary_prompts`` (given inline, as ``POST /evaluate`` does), its ``ordinary_file``
(``--ordinary-file``), or the set shipped in the package (``eval/data/``, whose README
says where it comes from). Selection follows the benchmark kinds: up to ``per_kind``
prompts per country of the knowledge base, plus one group for the prompts that name none
of its countries, each in a seeded order (so a larger quota extends a smaller one).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from eval.config import EvalConfigError, RunConfig
from eval.samples import OrdinaryPrompt, Sample

ORDINARY_PROMPTS = Path(__file__).resolve().parent / "data" / "ordinary_prompts.jsonl"
NO_PLACE = "none"  # the country of a prompt that names no place
OTHER = "other"  # the selection group of prompts naming no country of the knowledge base


def _error(message: str, param: str = "ordinary_file") -> EvalConfigError:
    return EvalConfigError(message, param=param)


def read_prompts(path: Path) -> tuple[OrdinaryPrompt, ...]:
    """Every prompt of a JSONL file (blank lines skipped); a bad line stops with its number."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(f"cannot read the ordinary prompts at {path}: "
                     f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from exc
    prompts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            prompts.append(OrdinaryPrompt.model_validate_json(line))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem.get("loc", ())) or "line"
            raise _error(f"{path} line {number}: {where}: {problem['msg']}") from exc
    return tuple(prompts)


def load_prompts(config: RunConfig) -> tuple[tuple[OrdinaryPrompt, ...], str]:
    """The run's ordinary prompts and a hash of their content (for the fingerprint)."""
    param = "ordinary_prompts" if config.ordinary_prompts else "ordinary_file"
    prompts = config.ordinary_prompts or read_prompts(config.ordinary_file or ORDINARY_PROMPTS)
    if not prompts:
        raise _error("the ordinary prompt set is empty", param)
    seen: set[str] = set()
    for prompt in prompts:
        if prompt.id in seen:
            raise _error(f"ordinary prompt id {prompt.id!r} appears twice", param)
        seen.add(prompt.id)
    blob = json.dumps([p.model_dump(mode="json") for p in prompts], sort_keys=True)
    return prompts, hashlib.sha256(blob.encode()).hexdigest()[:16]


def country_of(prompt: OrdinaryPrompt, kb_countries: set[str]) -> str:
    """The first place named that the knowledge base covers, else the first named, else
    ``"none"`` (lower-cased, as the benchmark's countries are)."""
    places = [p.strip().lower() for p in prompt.places if p.strip()]
    return next((p for p in places if p in kb_countries), places[0] if places else NO_PLACE)


def ordinary_samples(
    prompts: Sequence[OrdinaryPrompt],
    *,
    per_kind: int | None,
    kb_countries: set[str],
    countries: Iterable[str] | None = None,
    seed: int = 0,
) -> list[Sample]:
    """Up to ``per_kind`` prompts per knowledge-base country, plus up to ``per_kind`` of the
    rest (group ``other``); with ``countries``, only prompts naming one of them."""
    wanted = {c.strip().lower() for c in countries} if countries else None
    groups: dict[str, list[tuple[int, OrdinaryPrompt, str]]] = {}
    for index, prompt in enumerate(prompts):
        country = country_of(prompt, kb_countries)
        group = country if country in kb_countries else OTHER
        if wanted is None or group in wanted:
            groups.setdefault(group, []).append((index, prompt, country))
    samples: list[Sample] = []
    for group in sorted(groups):
        pool = sorted(groups[group], key=lambda item: item[1].id)
        random.Random(f"{seed}:ordinary:{group}").shuffle(pool)
        for index, prompt, country in pool[:per_kind]:
            samples.append(Sample.model_construct(
                id=f"ordinary:{prompt.id}", description_id="", country=country,
                kind="ordinary", variant="original", index=index, input=prompt.text,
                options=None, target=None, description=""))
    return samples
