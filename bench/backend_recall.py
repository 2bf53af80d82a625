"""``bench/retrieval_recall.py --backends``: recall and embedding cost per embedder runtime.

Recall of the shipped method with the index and the queries embedded by each backend
(and by torch for the index, each backend for the queries), and embedding latency per
query, alone and in batches of 32 (wall and CPU ms).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections import defaultdict
from typing import Any

from retrieval.embedder_factory import load_embedder
from retrieval.embedding_cache import set_torch_threads
from retrieval.index import build_index
from retrieval.protocols import Embedder
from retrieval.retriever import HYBRID, HybridRetriever

DEPTH = 20


def quality(ranked: list[list[str]], gold: list[str]) -> dict[str, float]:
    """R@1/5/20 and MRR@20 of rankings against one gold id each."""
    ranks = [r.index(g) + 1 if g in r else 10**9 for r, g in zip(ranked, gold, strict=True)]
    n = len(ranks)
    return {
        "R@1": sum(r <= 1 for r in ranks) / n,
        "R@5": sum(r <= 5 for r in ranks) / n,
        "R@20": sum(r <= 20 for r in ranks) / n,
        "MRR": sum(1 / r for r in ranks if r <= DEPTH) / n,  # MRR@20
    }


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
