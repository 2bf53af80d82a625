"""The ordinary-traffic dataset: the packaged set, another file, inline prompts, and a
selection that follows the benchmark kinds (per country, seeded, extendable)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eval import EvalConfigError, RunConfig
from eval.endpoint import EndpointConfig
from eval.manifest import select_samples
from eval.ordinary import ORDINARY_PROMPTS, load_prompts, ordinary_samples, read_prompts
from eval.samples import OrdinaryPrompt

KB_PLACES = {"china", "india", "spain", "thailand", "ukraine", "japan", "south korea",
             "mexico", "saudi arabia", "vietnam", "germany", "brazil"}
ADA = {"china", "india", "spain", "thailand", "ukraine"}
TARGET = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m")


def test_the_packaged_set_is_everyday_traffic_that_names_places() -> None:
    prompts = read_prompts(ORDINARY_PROMPTS)
    assert len(prompts) >= 100
    assert len({p.id for p in prompts}) == len(prompts)
    assert len({p.text for p in prompts}) == len(prompts)
    named = [p for p in prompts if {x.lower() for x in p.places} & KB_PLACES]
    assert len(named) / len(prompts) >= 0.7
    assert all({x.lower() for x in p.places} <= KB_PLACES for p in prompts)
    topics = Counter(p.topic for p in prompts)
    assert set(topics) >= {"weather", "prices", "visas", "itineraries", "transport",
                           "translation", "facts", "recipes", "code", "math", "writing"}
    assert min(topics.values()) >= 8


def test_selection_is_per_country_seeded_and_extendable() -> None:
    prompts = read_prompts(ORDINARY_PROMPTS)
    first = ordinary_samples(prompts, per_kind=3, kb_countries=ADA, seed=1)
    again = ordinary_samples(prompts, per_kind=3, kb_countries=ADA, seed=1)
    assert [s.id for s in first] == [s.id for s in again]
    by_country = Counter(s.country for s in first if s.country in ADA)
    assert by_country == dict.fromkeys(ADA, 3)
    # the rest (other countries, no place) is one more group of per_kind
    assert sum(s.country not in ADA for s in first) == 3
    assert all(s.kind == "ordinary" and s.id.startswith("ordinary:") for s in first)
    larger = ordinary_samples(prompts, per_kind=6, kb_countries=ADA, seed=1)
    assert {s.id for s in first} < {s.id for s in larger}
    other_seed = ordinary_samples(prompts, per_kind=3, kb_countries=ADA, seed=2)
    assert {s.id for s in other_seed} != {s.id for s in first}
    everything = ordinary_samples(prompts, per_kind=None, kb_countries=ADA)
    assert len(everything) == len(prompts)


def test_a_country_filter_keeps_the_prompts_naming_it() -> None:
    prompts = read_prompts(ORDINARY_PROMPTS)
    got = ordinary_samples(prompts, per_kind=None, kb_countries=ADA, countries=["Spain"])
    assert got and {s.country for s in got} == {"spain"}
    # a prompt naming two places counts for the one the knowledge base covers
    two = OrdinaryPrompt(id="x", text="Mexico City to Delhi?", places=("Mexico", "India"))
    assert ordinary_samples([two], per_kind=1, kb_countries=ADA)[0].country == "india"


def test_runs_select_ordinary_with_the_benchmark_kinds(mini_data: Path, tmp_path: Path
                                                       ) -> None:
    base = {"data_dir": mini_data, "target": TARGET, "per_kind": 2, "out_dir": tmp_path}
    both, data_hash = select_samples(RunConfig.model_validate(
        {**base, "kinds": ("knowledge", "ordinary"), "shuffled": False}))
    kinds = Counter(s.kind for s in both)
    assert kinds == {"knowledge": 10, "ordinary": 12}  # 5 countries + the rest, 2 each
    plain, plain_hash = select_samples(RunConfig.model_validate(
        {**base, "kinds": ("knowledge",), "shuffled": False}))
    assert data_hash.startswith(plain_hash + "+ordinary:") and len(plain) == 10
    assert RunConfig.model_validate(base).kinds == ("knowledge", "safety", "ordinary")


def test_another_file_and_inline_prompts(mini_data: Path, tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "Is it cold in Kyiv in May?", "places": ["Ukraine"]},
            {"id": "b", "text": "Sort a list in Go.", "intent": "not_cultural"}]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n", encoding="utf-8")
    base = {"data_dir": mini_data, "target": TARGET, "kinds": ("ordinary",),
            "out_dir": tmp_path}
    from_file, file_hash = select_samples(RunConfig.model_validate(
        {**base, "ordinary_file": path}))
    assert [(s.id, s.country) for s in from_file] == [("ordinary:b", "none"),
                                                       ("ordinary:a", "ukraine")]
    inline = RunConfig.model_validate({**base, "ordinary_prompts": rows})
    from_request, inline_hash = select_samples(inline)
    assert [s.id for s in from_request] == [s.id for s in from_file]
    assert inline_hash == file_hash  # the same prompts fingerprint the same
    assert load_prompts(inline)[0][0].places == ("Ukraine",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "text": "hi"}\n{"id": "b"}\n', "line 2: text: Field required"),
        ('{"id": "a", "text": "hi"}\n{"id": "a", "text": "again"}\n', "appears twice"),
        ("not json\n", "line 1"),
        ("\n\n", "empty"),
    ],
)
def test_a_bad_file_is_refused_with_where(mini_data: Path, tmp_path: Path, content: str,
                                          message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    config = RunConfig(data_dir=mini_data, target=TARGET, kinds=("ordinary",),
                       ordinary_file=path, out_dir=tmp_path)
    with pytest.raises(EvalConfigError, match=message) as caught:
        select_samples(config)
    assert caught.value.param == "ordinary_file"
    missing = config.model_copy(update={"ordinary_file": tmp_path / "absent.jsonl"})
    with pytest.raises(EvalConfigError, match="cannot read"):
        select_samples(missing)
