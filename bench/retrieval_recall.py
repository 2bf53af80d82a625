"""Retrieval quality and latency on AdaCultureSafe: BM25 vs plain dense vs the shipped method.

Every AdaCultureSafe question and query was written from exactly one description, so the
description is the ground truth. Only descriptions (with their location) are indexed;
the questions and queries are only ever used as queries.

    python bench/retrieval.py [--data ../shared/data/adaculturesafe] [--sample N]
    python bench/retrieval.py --backends torch,onnx,onnx-int8 [--sample N]

Prints Recall@1/5/20 and MRR (knowledge questions and safety queries separately, overall
and per location so a choice made on some countries can be checked on the others),
single-query latency (p50/p95, best of --latency-runs runs), and the top-1 cosine of
cultural vs ordinary prompts, which the similarity threshold must separate. With
--backends it compares embedder runtimes instead (shipped method only): recall with the
index and the queries embedded by each backend, and by torch (index) + each (queries),
and embedding latency per query, alone and in batches of 32 (wall and CPU ms).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
# This file is named like the package it measures: import the package, not itself.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE.parent)]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from retrieval.embedder_factory import load_embedder  # noqa: E402
from retrieval.embedding_cache import set_torch_threads  # noqa: E402
from retrieval.index import build_index, text_to_index  # noqa: E402
from retrieval.knowledge_base import load_knowledge_base  # noqa: E402
from retrieval.lexical import LexicalScorer  # noqa: E402
from retrieval.protocols import Embedder  # noqa: E402
from retrieval.retriever import HYBRID, PLAIN_DENSE, HybridRetriever  # noqa: E402

DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "adaculturesafe"
DEPTH = 20
Ranker = Callable[[Sequence[str]], list[list[str]]]  # queries -> ranked ids (top DEPTH)


def load_queries(kb_path: Path) -> tuple[object, dict[str, list[tuple[str, str]]]]:
    kb = load_knowledge_base(kb_path)
    queries: dict[str, list[tuple[str, str]]] = {"knowledge": [], "safety": []}
    for d in kb.descriptions:
        queries["knowledge"] += [(q.question, d.id) for q in d.knowledge]
        queries["safety"] += [(q.text, d.id) for q in d.safety]
    return kb, queries


def quality(ranked: list[list[str]], gold: list[str]) -> dict[str, float]:
    ranks = [r.index(g) + 1 if g in r else 10**9 for r, g in zip(ranked, gold, strict=True)]
    n = len(ranks)
    return {
        "R@1": sum(r <= 1 for r in ranks) / n,
        "R@5": sum(r <= 5 for r in ranks) / n,
        "R@20": sum(r <= 20 for r in ranks) / n,
        "MRR": sum(1 / r for r in ranks if r <= DEPTH) / n,  # MRR@20
    }


def latency(search_one: Callable[[str], object], texts: list[str], runs: int) -> tuple[float, ...]:
    """(p50, p95) in ms of single-query calls: the run with the best p50 (shared CPU)."""
    best: tuple[float, float] | None = None
    for _ in range(runs):
        times = []
        for text in texts:
            start = time.perf_counter()
            search_one(text)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p50, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
        best = (p50, p95) if best is None or p50 < best[0] else best
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sample", type=int, default=0, help="queries per kind (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--latency-runs", type=int, default=3)
    parser.add_argument("--backend", default="torch", help="embedder runtime of the tables")
    parser.add_argument("--backends", default="", help="compare these runtimes (a,b,...)")
    args = parser.parse_args()

    kb, queries = load_queries(args.data)
    rng = random.Random(args.seed)
    if args.sample:
        queries = {kind: rng.sample(qs, min(args.sample, len(qs))) for kind, qs in queries.items()}
    location_of = {d.id: d.location for d in kb.descriptions}  # type: ignore[attr-defined]
    descriptions = kb.descriptions  # type: ignore[attr-defined]
    if args.backends:
        backend_report(descriptions, queries, args.backends.split(","), rng, args)
        return
    embedder = load_embedder(backend=args.backend)

    t0 = time.perf_counter()
    dense = HybridRetriever(
        build_index(descriptions, embedder, layout=PLAIN_DENSE.layout),
        embedder, threshold=-1.0, method=PLAIN_DENSE,
    )
    hybrid = HybridRetriever(
        build_index(descriptions, embedder, layout=HYBRID.layout),
        embedder, threshold=-1.0, method=HYBRID,
    )
    index_s = time.perf_counter() - t0
    ids = [d.id for d in descriptions]
    bm25 = LexicalScorer([text_to_index(d.location, d.description, "description")
                          for d in descriptions])

    def bm25_rank(texts: Sequence[str]) -> list[list[str]]:
        return [[ids[i] for i in np.argsort(-bm25.scores(t), kind="stable")[:DEPTH]]
                for t in texts]

    rows: list[tuple[str, str, dict[str, float], tuple[float, ...]]] = []
    per_location: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(dict)
    for kind, items in queries.items():
        texts, gold = [q for q, _ in items], [g for _, g in items]
        t0 = time.perf_counter()
        vectors = embedder.encode(texts)
        print(f"embedded {len(texts)} {kind} queries in {time.perf_counter() - t0:.0f} s")
        timing = rng.sample(texts, min(args.latency_queries, len(texts)))
        rankers: dict[str, tuple[Callable[[], list[list[str]]], Callable[[str], object]]] = {
            "bm25": (lambda t=texts: bm25_rank(t), lambda q: bm25_rank([q])),
            "dense": (
                lambda t=texts, v=vectors: [[p.id for p in ps] for ps in
                                            dense.search_embedded(t, v, DEPTH)],
                lambda q: dense.search(q, 5),
            ),
            "hybrid (shipped)": (
                lambda t=texts, v=vectors: [[p.id for p in ps] for ps in
                                            hybrid.search_embedded(t, v, DEPTH)],
                lambda q: hybrid.search(q, 5),
            ),
        }
        for name, (rank_all, search_one) in rankers.items():
            ranked = rank_all()
            rows.append((kind, name, quality(ranked, gold), latency(search_one, timing,
                                                                      args.latency_runs)))
            by_loc: dict[str, list[int]] = defaultdict(list)
            for i, g in enumerate(gold):
                by_loc[location_of[g]].append(i)
            for loc, idx in sorted(by_loc.items()):
                q = quality([ranked[i] for i in idx], [gold[i] for i in idx])
                per_location[(kind, name)][loc] = [q["R@1"], q["R@5"]]

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{len(descriptions)} descriptions; index build (both layouts) {index_s:.0f} s")
    print("\n| queries | method | n | R@1 | R@5 | R@20 | MRR@20 | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, name, q, (p50, p95) in rows:
        n = len(queries[kind])
        print(f"| {kind} | {name} | {n} | {q['R@1']:.3f} | {q['R@5']:.3f} | {q['R@20']:.3f} "
              f"| {q['MRR']:.3f} | {p50:.1f} | {p95:.1f} |")
    locations = sorted({loc for d in per_location.values() for loc in d})
    print("\nPer location, R@1 / R@5:\n")
    print("| queries | method | " + " | ".join(locations) + " |")
    print("|---|---|" + "---|" * len(locations))
    for (kind, name), by in per_location.items():
        cells = " | ".join(f"{by[loc][0]:.3f} / {by[loc][1]:.3f}" if loc in by else "-"
                           for loc in locations)
        print(f"| {kind} | {name} | {cells} |")
    threshold_report(dense, hybrid, queries, rng)


def threshold_report(dense: HybridRetriever, hybrid: HybridRetriever,
                     queries: dict[str, list[tuple[str, str]]], rng: random.Random) -> None:
    """Top-1 cosine of cultural queries vs ordinary prompts, for each layout."""
    ordinary = [line.strip() for line in
                (HERE / "non_cultural_prompts.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    cultural = {kind: [q for q, _ in rng.sample(qs, min(500, len(qs)))]
                for kind, qs in queries.items()}
    print("\nTop-1 cosine (the threshold applies to it): percentiles\n")
    print("| method | texts | n | min | p1 | p5 | p50 | max |")
    print("|---|---|---|---|---|---|---|---|")
    for name, retriever in (("dense", dense), ("hybrid (shipped)", hybrid)):
        for label, texts in (("ordinary prompts", ordinary), *cultural.items()):
            top = sorted(ps[0].score for ps in retriever.search_many(texts, 1))
            pct = np.percentile(top, [0, 1, 5, 50, 100])
            print(f"| {name} | {label} | {len(top)} | " + " | ".join(f"{v:.3f}" for v in pct)
                  + " |")


def encode_timing(embedder: Embedder, texts: list[str], batch: int) -> tuple[float, float]:
    """(p50 wall ms, CPU ms) per text, encoding ``texts`` ``batch`` at a time."""
    walls = []
    cpu = time.process_time()
    for start in range(0, len(texts), batch):
        t0 = time.perf_counter()
        embedder.encode(texts[start:start + batch])
        walls.append((time.perf_counter() - t0) * 1000 / len(texts[start:start + batch]))
    return statistics.median(walls), (time.process_time() - cpu) * 1000 / len(texts)


def backend_report(descriptions: list[Any], queries: dict[str, list[tuple[str, str]]],
                   backends: list[str], rng: random.Random, args: argparse.Namespace) -> None:
    """Recall of the shipped method and embedding latency, per embedder runtime."""
    embedders = {b: load_embedder(backend=b, threads=1) for b in backends}
    set_torch_threads(1)
    indexes = {b: build_index(descriptions, e, layout=HYBRID.layout) for b, e in embedders.items()}
    pairs = [(b, b) for b in backends] + [("torch", b) for b in backends
                                          if b != "torch" and "torch" in backends]
    recall: dict[tuple[str, str], list[float]] = defaultdict(list)
    timing: dict[tuple[str, str, int], list[tuple[float, float]]] = defaultdict(list)
    for kind, items in queries.items():
        texts, gold = [q for q, _ in items], [g for _, g in items]
        vectors = {b: e.encode(texts) for b, e in embedders.items()}
        for index_by, query_by in pairs:
            retriever = HybridRetriever(indexes[index_by], embedders[query_by], threshold=-1.0,
                                       method=HYBRID)
            ranked = [[p.id for p in ps]
                      for ps in retriever.search_embedded(texts, vectors[query_by], DEPTH)]
            q = quality(ranked, gold)
            recall[(index_by, query_by)] += [q["R@1"], q["R@5"]]
        sample = rng.sample(texts, min(args.latency_queries, len(texts)))
        for _ in range(args.latency_runs):  # interleaved, so load bursts hit every backend
            for b, e in embedders.items():
                for batch in (1, 32):
                    timing[(b, kind, batch)].append(encode_timing(e, sample, batch))
    n = {kind: len(items) for kind, items in queries.items()}
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, 1 thread; "
          f"{len(descriptions)} descriptions; {n} queries; latency: {args.latency_queries} "
          f"texts per kind, best of {args.latency_runs} interleaved runs")
    print("\n| index by | queries by | knowledge R@1 | R@5 | safety R@1 | R@5 |")
    print("|---|---|---|---|---|---|")
    for pair in pairs:
        print(f"| {pair[0]} | {pair[1]} | " + " | ".join(f"{v:.3f}" for v in recall[pair]) + " |")
    print("\nEmbedding ms per query: wall p50 / CPU mean\n")
    print("| backend | knowledge, 1 | knowledge, batch 32 | safety, 1 | safety, batch 32 |")
    print("|---|---|---|---|---|")
    for b in backends:
        cells = [min(timing[(b, kind, batch)]) for kind in queries for batch in (1, 32)]
        print(f"| {b} | " + " | ".join(f"{w:.1f} / {c:.1f}" for w, c in cells) + " |")


if __name__ == "__main__":
    main()
