"""Location consistency: does a query that names a place get knowledge of that place only?

Compares the shipped retrieval method with and without its location rule
(``RetrievalMethod.location_consistent``: when the query names knowledge-base locations,
other locations' descriptions are dropped; when it names only places outside the knowledge
base, nothing is returned), and with and without its fallback (``location_fallback``: named
locations with no passing description let other locations' ones through), on the user-like
sets, on AdaCultureSafe's own (long, English, adversarial) queries and on
``sets/locations/outside_kb.jsonl`` (questions about countries the knowledge base lacks).

    python bench/location_rule.py [--split dev|heldout] [--sample 500]

Per set and method, at the gateway's threshold and top-3 (conversations retrieved as the
gateway does: the last user turn alone and with the previous one, best score wins):

* ``grounded``: share of queries with at least one passage;
* ``R@3``: share of queries with a relevant description in the top 3;
* ``wrong``: share of returned top-3 passages of another country than the query's;
* ``q wrong``: share of queries with at least one such passage;
* ``named wrong``: among queries whose text names their country and get a passage of it,
  those with a passage of a location the text does not name (the target is 0);
* ``outside``: queries whose text names places, none of them in the knowledge base (by the
  rule's detector; on these sets it is a detection error, e.g. a word taken for a city).

On the outside-KB set every passage is another country's: ``grounded`` is the share of
questions that get one (the target is 0) and ``outside`` how many the detector sees as
naming only places outside the knowledge base (the target is all).

AdaCultureSafe is also ranked without a threshold (R@1/R@5 over all descriptions, as
``bench/retrieval_recall.py`` does) so the rule's effect on its recall is seen.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from app.grounding.queries import retrieval_queries  # noqa: E402
from retrieval.build import build_retriever  # noqa: E402
from retrieval.crosslingual import CrossLingualRetriever  # noqa: E402
from retrieval.models import Passage  # noqa: E402
from retrieval.multilingual import with_multilingual  # noqa: E402
from retrieval.retriever import HYBRID, HybridRetriever  # noqa: E402
from retrieval.routing import RoutedRetriever  # noqa: E402

DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "adaculturesafe"
SETS = HERE / "sets"
TOP_K = 3
ADA_COUNTRIES = {"China", "India", "Spain", "Thailand", "Ukraine"}


@dataclass(frozen=True)
class Query:
    """One retrieval case: the texts searched, its country and its relevant ids."""

    texts: tuple[str, ...]  # searched separately, best score per passage wins
    country: str
    relevant: frozenset[str]


def relevant_ids(path: Path, row: dict[str, object]) -> frozenset[str]:
    """The set's item ids as the index names them (``<data file stem>/<item id>``)."""
    relevant = row["relevant"]
    assert isinstance(relevant, dict)
    return frozenset(f"{path.stem}/{item}" for item in relevant)


def natural_queries(split: str) -> dict[str, list[Query]]:
    """``natural/<lang>`` (en, the country's language, the other one) and conversations."""
    out: dict[str, list[Query]] = {}
    for path in sorted((SETS / "natural").glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line)
            if row["split"] != split:
                continue
            for i, (lang, text) in enumerate(row["texts"].items()):
                name = "natural/en" if lang == "en" else ("natural/native" if i == 1
                                                           else "natural/other")
                out.setdefault(name, []).append(
                    Query((text,), row["country"], relevant_ids(path, row)))
    for path in sorted((SETS / "conversations").glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line)
            if row["split"] == split:
                out.setdefault("conversations", []).append(Query(
                    tuple(retrieval_queries(row["messages"])), row["country"],
                    relevant_ids(path, row)))
    return out


def other_language_queries(split: str) -> dict[str, list[Query]]:
    """Cultural questions in other languages about countries outside the knowledge base:
    dev, those of the gate's training corpus; held-out, ``bench/sets/intent``'s."""
    path = (HERE.parent / "retrieval/data/intent_train_multilingual.jsonl" if split == "dev"
            else SETS / "intent/cultural_multilingual_heldout.jsonl")
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return {"outside-kb, other languages": [
        Query((r["text"],), r["country"], frozenset()) for r in rows
        if r["intent"] != "not_cultural" and r["country"] not in ADA_COUNTRIES]}


def outside_queries(split: str) -> dict[str, list[Query]]:
    """Questions naming countries outside the knowledge base, per kind and in all."""
    out: dict[str, list[Query]] = {}
    for line in (SETS / "locations" / "outside_kb.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        if row["split"] == split:
            query = Query((row["text"],), row["country"], frozenset())
            out.setdefault("outside-kb", []).append(query)
            out.setdefault(f"outside-kb/{row['kind']}", []).append(query)
    return out


def adaculturesafe_queries(retriever: HybridRetriever, sample: int,
                           seed: int) -> dict[str, list[Query]]:
    kb = retriever.knowledge_base
    assert kb is not None
    out: dict[str, list[Query]] = {"ada/knowledge": [], "ada/safety": []}
    for d in kb.descriptions:
        rel = frozenset({d.id})
        out["ada/knowledge"] += [Query((q.question,), d.location, rel) for q in d.knowledge]
        out["ada/safety"] += [Query((q.text,), d.location, rel) for q in d.safety]
    rng = random.Random(seed)
    return {k: rng.sample(v, min(sample, len(v))) for k, v in out.items()}


Search = Callable[[Sequence[str]], list[list[Passage]]]


def merged(search: Search, query: Query, k: int) -> list[Passage]:
    best: dict[str, Passage] = {}
    for found in search(query.texts):
        for p in found:
            if p.id not in best or p.score > best[p.id].score:
                best[p.id] = p
    return sorted(best.values(), key=lambda p: p.score, reverse=True)[:k]


def row(retriever: HybridRetriever | RoutedRetriever, queries: list[Query]) -> dict[str, float]:
    grounded = recall = wrong = returned = q_wrong = named = named_wrong = outside = 0
    english = retriever.english if isinstance(retriever, RoutedRetriever) else retriever
    detect, known = english.detector.detect, english.detector.known  # the rule's own
    for query in queries:
        found = merged(lambda t: retriever.search_many(t, TOP_K), query, TOP_K)
        bad = [p for p in found if p.location != query.country]
        grounded += bool(found)
        recall += any(p.id in query.relevant for p in found)
        returned += len(found)
        wrong += len(bad)
        q_wrong += bool(bad)
        names = {n for t in query.texts for n in detect(t)}
        outside += bool(names) and not names & known
        if query.country in names and any(p.location == query.country for p in found):
            named += 1
            named_wrong += any(p.location not in names for p in found)
    n = len(queries)
    return {"n": n, "grounded": grounded / n, "R@3": recall / n,
            "wrong": wrong / returned if returned else 0.0, "q wrong": q_wrong / n,
            "named": named, "named wrong": named_wrong, "outside": outside}


def unthresholded(retriever: HybridRetriever, queries: list[Query]) -> dict[str, float]:
    """R@1 and R@5 over all descriptions (threshold off), AdaCultureSafe's gold id."""
    loose = HybridRetriever(retriever.index, retriever.embedder, threshold=-1.0,
                            method=retriever.method)
    texts = [q.texts[0] for q in queries]
    ranked = loose.search_embedded(texts, loose.embedder.encode(texts), 5)
    ranks = [next((i for i, p in enumerate(r, 1) if p.id in q.relevant), 99)
             for r, q in zip(ranked, queries, strict=True)]
    return {"R@1": sum(r <= 1 for r in ranks) / len(ranks),
            "R@5": sum(r <= 5 for r in ranks) / len(ranks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--index-dir", type=Path, default=Path("var/index-adaculturesafe"))
    parser.add_argument("--split", choices=("dev", "heldout"), default="dev")
    parser.add_argument("--sample", type=int, default=500, help="AdaCultureSafe queries per kind")
    parser.add_argument("--threshold", type=float, default=0.40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    shipped = build_retriever(data_dir=args.data, index_dir=args.index_dir, embedder_model=None,
                              threshold=args.threshold, progress=True)
    def variant(**change: bool) -> HybridRetriever:
        return HybridRetriever(shipped.index, shipped.embedder, threshold=args.threshold,
                               method=replace(HYBRID, **change),
                               knowledge_base=shipped.knowledge_base)

    fallback = "fallback" if HYBRID.location_fallback else "no fallback"
    methods = {
        "without rule": variant(location_consistent=False),
        f"rule, {fallback} (shipped)": shipped,
        f"rule, {'no fallback' if HYBRID.location_fallback else 'fallback'}":
            variant(location_fallback=not HYBRID.location_fallback),
    }
    sets = {**natural_queries(args.split), **outside_queries(args.split),
            **adaculturesafe_queries(shipped, args.sample, args.seed)}
    print(f"\nthreshold {args.threshold}, top-{TOP_K}, user-like sets: {args.split} split\n")
    print("| set | method | n | grounded | R@3 | wrong | q wrong | named | named wrong "
          "| outside |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, queries in sets.items():
        for label, retriever in methods.items():
            r = row(retriever, queries)
            print(f"| {name} | {label} | {r['n']} | {r['grounded']:.3f} | {r['R@3']:.3f} | "
                  f"{r['wrong']:.3f} | {r['q wrong']:.3f} | {r['named']} | "
                  f"{r['named wrong']} | {r['outside']} |", flush=True)
    routed = with_multilingual(shipped, args.index_dir)
    free = RoutedRetriever(methods["without rule"], CrossLingualRetriever(
        routed.other.e5_index, routed.other.e5, routed.other.use_index, routed.other.use,
        threshold=routed.other.threshold, use_weight=routed.other.use_weight))
    print("\nAs the gateway routes them (English: MiniLM, other languages: e5 + USE):\n")
    print("| set | method | n | grounded | R@3 | wrong | q wrong | named | named wrong "
          "| outside |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    routed_sets = {k: v for k, v in sets.items() if k in ("natural/native", "natural/other")}
    for name, queries in {**routed_sets, **other_language_queries(args.split)}.items():
        for label, retriever in (("without rule", free), ("rule (shipped)", routed)):
            r = row(retriever, queries)
            print(f"| {name} | {label} | {r['n']} | {r['grounded']:.3f} | {r['R@3']:.3f} | "
                  f"{r['wrong']:.3f} | {r['q wrong']:.3f} | {r['named']} | "
                  f"{r['named wrong']} | {r['outside']} |", flush=True)
    print("\nAdaCultureSafe without a threshold (all descriptions ranked):\n")
    print("| queries | method | R@1 | R@5 |\n|---|---|---|---|")
    for name in ("ada/knowledge", "ada/safety"):
        for label, retriever in methods.items():
            r = unthresholded(retriever, sets[name])
            print(f"| {name} | {label} | {r['R@1']:.3f} | {r['R@5']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
