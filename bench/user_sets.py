"""Recall on the user-like sets (``bench/sets/``): natural questions, the same questions in
other languages, and conversations; dev and held-out halves apart (issue 12).

Each item is searched the way the gateway searches it: the queries of
:func:`app.grounding.queries.retrieval_queries` (a conversation's last user turn, and that
turn with the previous one), each passage kept at its best score over the queries and
the passages ordered by score, as ``GroundingService._retrieve`` does. Metrics per item:

* R@1, R@5: a description graded relevant (>= 1) is first / in the first five; "g2":
  the same counting only grade 2 (the description answers the question);
* grounded: some passage passes the similarity threshold of the path that served it;
* wrong-country top-3: share of the first three passages (the gateway's default top_k)
  whose location is not the item's country.

Recall is computed without a threshold (ranking quality, as for AdaCultureSafe); the
threshold only decides ``grounded``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.grounding.queries import retrieval_queries
from retrieval.models import Passage

SPLITS = ("dev", "heldout")
COLUMNS = ("n", "R@1", "R@5", "R@1 g2", "R@5 g2", "grounded", "wrong top-3")
# queries -> passages per query (threshold off), and whether each query's best passage
# passes the threshold of the path that served it
Search = Callable[[Sequence[str], int], list[list[Passage]]]
Passes = Callable[[str, Passage], bool]


@dataclass(frozen=True)
class UserItem:
    """One question in one language, or one conversation."""

    id: str
    kind: str  # natural (English), multilingual (other languages), conversations
    lang: str
    split: str
    country: str
    messages: tuple[dict[str, str], ...]
    relevant: dict[str, int]  # knowledge-base id -> grade


def load_user_sets(sets_dir: Path) -> list[UserItem]:
    """Every item of ``natural/*.jsonl`` (one per language) and ``conversations/*.jsonl``.

    Relevance ids are the data file's keys; the knowledge base names a description
    ``<file stem>/<key>``, so each is resolved in the file of its row's country.
    """
    items: list[UserItem] = []
    for path in sorted((sets_dir / "natural").glob("*.jsonl")):
        for row in _rows(path):
            relevant = {f"{path.stem}/{key}": grade for key, grade in row["relevant"].items()}
            for lang, text in row["texts"].items():
                kind = "natural" if lang == "en" else "multilingual"
                items.append(UserItem(row["id"], kind, lang, row["split"], row["country"],
                                      ({"role": "user", "content": text},), relevant))
    for path in sorted((sets_dir / "conversations").glob("*.jsonl")):
        for row in _rows(path):
            relevant = {f"{path.stem}/{key}": grade for key, grade in row["relevant"].items()}
            items.append(UserItem(row["id"], "conversations", row.get("lang", "en"),
                                  row["split"], row["country"], tuple(row["messages"]),
                                  relevant))
    return items


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def evaluate(items: Sequence[UserItem], search: Search, passes: Passes,
             depth: int = 5) -> list[dict[str, float]]:
    """Per item: the metrics of the module docstring (each 0.0 or 1.0, wrong a share)."""
    queries = [retrieval_queries(list(item.messages)) for item in items]
    flat = [q for qs in queries for q in qs]
    found = iter(search(flat, depth))
    rows = []
    for item, qs in zip(items, queries, strict=True):
        best: dict[str, Passage] = {}
        grounded = False
        for query in qs:
            passages = next(found)
            grounded |= bool(passages) and passes(query, passages[0])
            for p in passages:
                if p.id not in best or p.score > best[p.id].score:
                    best[p.id] = p
        ranked = sorted(best.values(), key=lambda p: p.score, reverse=True)[:depth]
        grades = [item.relevant.get(p.id, 0) for p in ranked]
        top3 = ranked[:3]
        rows.append({
            "R@1": float(grades[:1] != [] and grades[0] >= 1),
            "R@5": float(any(g >= 1 for g in grades[:5])),
            "R@1 g2": float(grades[:1] != [] and grades[0] >= 2),
            "R@5 g2": float(any(g >= 2 for g in grades[:5])),
            "grounded": float(grounded),
            "wrong top-3": (sum(p.location != item.country for p in top3) / len(top3)
                            if top3 else 0.0),
        })
    return rows


def group_means(items: Sequence[UserItem], rows: Sequence[dict[str, float]]
                ) -> dict[tuple[str, str, str], dict[str, float]]:
    """Means per (kind, language, split), plus (kind, "all", split) and non-English."""
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[(item.kind, item.lang, item.split)].append(i)
        groups[(item.kind, "all", item.split)].append(i)
        if item.lang != "en":
            groups[("any kind", "non-English", item.split)].append(i)
    out = {}
    for key, members in groups.items():
        means = {m: sum(rows[i][m] for i in members) / len(members) for m in COLUMNS[1:]}
        out[key] = {"n": float(len(members)), **means}
    return out


def print_tables(results: dict[str, dict[tuple[str, str, str], dict[str, float]]],
                 splits: Sequence[str] = SPLITS) -> None:
    """A markdown table: a row per (kind, language, path), each cell ``dev / held-out``."""
    keys = sorted({(kind, lang) for table in results.values() for kind, lang, _ in table},
                  key=lambda k: (k[0], k[1] != "all", k[1]))
    print(f"\nCells: {' / '.join(splits)}\n")
    print("| kind | language | path | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for kind, lang in keys:
        for path, table in results.items():
            cells = []
            for metric in COLUMNS:
                values = [table.get((kind, lang, split), {}).get(metric) for split in splits]
                cells.append(" / ".join(
                    "-" if v is None else f"{v:.0f}" if metric == "n" else f"{v:.3f}"
                    for v in values))
            print(f"| {kind} | {lang} | {path} | " + " | ".join(cells) + " |")


def user_report(data_dir: Path, sets_dir: Path, index_dir: Path, backend: str,
                threshold: float, splits: Sequence[str]) -> None:
    """Build the shipped English retriever and the routed one, and print their tables."""
    import time

    from retrieval.build import build_retriever
    from retrieval.crosslingual import DEFAULT_THRESHOLD
    from retrieval.language import ENGLISH, query_language
    from retrieval.multilingual import with_multilingual

    english = build_retriever(data_dir=data_dir, index_dir=index_dir, embedder_model=None,
                              threshold=-1.0, embedder_backend=backend, progress=True)
    routed = with_multilingual(english, index_dir, threshold=-1.0)
    items = [item for item in load_user_sets(sets_dir) if item.split in splits]

    def english_passes(_query: str, passage: Passage) -> bool:
        return passage.score >= threshold

    def routed_passes(query: str, passage: Passage) -> bool:
        own = threshold if query_language(query) == ENGLISH else DEFAULT_THRESHOLD
        return passage.score >= own

    results = {}
    cpu: dict[str, dict[str, float]] = {}
    for name, retriever, passes in (("English only (before)", english, english_passes),
                                    ("routed (default)", routed, routed_passes)):
        cpu[name] = {}
        rows: list[dict[str, float]] = []
        for kind in ("natural", "multilingual", "conversations"):
            subset = [item for item in items if item.kind == kind]
            start = time.process_time()
            rows += evaluate(subset, lambda qs, k, r=retriever: r.search_many(qs, k), passes)
            cpu[name][kind] = (time.process_time() - start) * 1000 / max(len(subset), 1)
        ordered = [item for kind in ("natural", "multilingual", "conversations")
                   for item in items if item.kind == kind]
        results[name] = group_means(ordered, rows)
    print(f"\nUser-like sets ({sets_dir}): {len(items)} items; English threshold {threshold}, "
          f"cross-lingual (e5) threshold {DEFAULT_THRESHOLD}; embedder backend {backend}")
    print_tables(results, splits)
    print("\nCPU ms per item (process time, 1 thread; the box is shared, so rough):\n")
    print("| path | natural | multilingual | conversations |\n|---|---|---|---|")
    for name, by_kind in cpu.items():
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in by_kind.values()) + " |")
