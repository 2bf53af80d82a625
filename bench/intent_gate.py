"""Intent gate: does ordinary traffic stay untouched, and is each cultural request given the
right voice? The targets of issue 11 that concern the gate, on held-out sets only.

    python bench/intent_gate.py                      # starter KB and AdaCultureSafe
    python bench/intent_gate.py --per-description 2  # quicker: fewer held-out dataset items

For each packaged knowledge base (the starter KB, AdaCultureSafe), the retriever is built
as the gateway builds it (``retrieval.multilingual.build_routed_retriever``): English text
on MiniLM with its gate, any other language on e5 (+ USE) with a gate fitted in the e5
space on the same data (``retrieval.intent.load_or_train_gate``: packaged corpus + the
KB's own items, thresholds by cross-validation on them). Each text is judged as the
gateway judges it (``retrieve_many``: the gate of its language's path on the vector that
path computed); a request is *grounded* when that gate calls it cultural AND a
description passes that path's threshold. Held-out sets, never used
for a choice: ``bench/sets/intent/*_heldout.jsonl`` (ordinary prompts; questions and
disparaging requests about countries no training example is about), the held-out halves
of ``bench/sets/natural/`` (short questions, 11 languages), ``bench/sets/voice/`` and the
``*_multilingual_heldout.jsonl`` sets (ordinary prompts, questions and disparaging requests
in 19 languages besides English). For
AdaCultureSafe the dataset's own items are scored by country rotation: the gate is fitted
with the items of three countries and scores every knowledge question and safety query of
the other two. Gate cost is timed on one vector (indicative: the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from retrieval.intent import IntentGate, load_or_train_gate  # noqa: E402
from retrieval.intent_data import INTENTS, knowledge_base_examples, packaged_examples  # noqa: E402
from retrieval.intent_fit import fit_gate_on  # noqa: E402
from retrieval.knowledge_base import KnowledgeBase  # noqa: E402
from retrieval.multilingual import build_routed_retriever  # noqa: E402
from retrieval.protocols import Embedder  # noqa: E402
from retrieval.retriever import HybridRetriever  # noqa: E402
from retrieval.routing import RoutedRetriever  # noqa: E402

SETS = ROOT / "bench/sets"
ADA = ROOT.parent / "shared/data/adaculturesafe"
ROTATIONS = [
    (("China", "India", "Spain"), ("Thailand", "Ukraine")),
    (("Thailand", "Ukraine", "China"), ("India", "Spain")),
    (("India", "Spain", "Thailand"), ("Ukraine", "China")),
]
OTHER = "(other languages)"  # the held-out sets written in 19 languages besides English
Item = tuple[str, str, bool]  # text, intent, names a location of the KB


class Memo:
    """The query embedder, each text embedded once for the whole run."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self.seen: dict[str, npt.NDArray[np.float32]] = {}

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        todo = sorted({t for t in texts if t not in self.seen})
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            self.seen.update(zip(chunk, self.inner.encode(chunk), strict=True))
            print(f"\r  embedded {len(self.seen)} texts", end="", file=sys.stderr, flush=True)
        return np.stack([self.seen[t] for t in texts]) if texts else np.zeros((0, self.dimension))


def rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def held_out_sets(kb: KnowledgeBase) -> dict[str, list[Item]]:
    """Held-out user-like sets, each item flagged if it names a location of ``kb``."""
    located = {name.casefold() for name in kb.locations}

    def names(row: dict[str, object]) -> bool:
        return any(str(p).casefold() in located for p in row.get("places", []))  # type: ignore[attr-defined]

    sets: dict[str, list[Item]] = {}
    for kind in ("ordinary", "questions", "disparaging"):
        sets[kind] = [(str(r["text"]), str(r["intent"]), names(r))
                      for r in rows(SETS / f"intent/{kind}_heldout.jsonl")]
    other = rows(SETS / "intent/ordinary_multilingual_heldout.jsonl")
    other += rows(SETS / "intent/cultural_multilingual_heldout.jsonl")
    for kind, intent in (("ordinary", "not_cultural"), ("questions", "cultural_question"),
                         ("disparaging", "disparaging")):
        sets[f"{kind} {OTHER}"] = [(str(r["text"]), intent, names(r)) for r in other
                                   if r["intent"] == intent]
    voice = rows(SETS / "voice/heldout.jsonl")
    sets["voice questions"] = [(str(r["text"]), str(r["intent"]), False) for r in voice
                               if r["intent"] == "cultural_question"]
    sets["voice disparaging"] = [(str(r["text"]), str(r["intent"]), False) for r in voice
                                 if r["intent"] == "disparaging"]
    natural = [r for f in sorted((SETS / "natural").glob("*.jsonl")) for r in rows(f)
               if r["split"] == "heldout"]
    for lang in ("en", "zh", "hi", "es", "th", "uk", "fr", "de", "ja", "vi", "pt"):
        texts = [t[lang] for r in natural if lang in (t := r["texts"])]  # type: ignore[operator]
        if texts:
            sets[f"natural {lang}"] = [(t, "cultural_question", True) for t in texts]
    return sets


def verdicts(gate: IntentGate, retriever: HybridRetriever, embedder: Memo,
             texts: list[str]) -> tuple[list[str], list[bool]]:
    vectors = embedder.encode(texts)
    intents = [p.intent for p in gate.predict(vectors)]
    passing = [bool(r) for r in retriever.search_embedded(texts, vectors, 1)]
    return intents, [i != "not_cultural" and p for i, p in zip(intents, passing, strict=True)]


def gateway_verdicts(routed: RoutedRetriever, texts: list[str]) -> tuple[list[str], list[bool]]:
    """Each text's intent and whether it is grounded, as the gateway decides them."""
    found = []
    for start in range(0, len(texts), 64):
        found += routed.retrieve_many(texts[start:start + 64], 1)
    intents = [r.intent.intent if r.intent is not None else "-" for r in found]
    return intents, [bool(r.passages) for r in found]


def pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part}/{whole})" if whole else "-"


def report_sets(label: str, routed: RoutedRetriever, kb: KnowledgeBase) -> None:
    confusion = {"English": np.zeros((3, 3), dtype=int), OTHER: np.zeros((3, 3), dtype=int)}
    print(f"\n### {label}: held-out user-like sets, judged as the gateway judges them\n")
    print("| set | n | not_cultural | cultural_question | disparaging | grounded |")
    print("|---|---|---|---|---|---|")
    for name, items in held_out_sets(kb).items():
        texts = [t for t, _, _ in items]
        intents, grounded = gateway_verdicts(routed, texts)
        part = OTHER if name.endswith(OTHER) else "English"
        if not name.startswith("natural") or name == "natural en":
            for (_, want, _), got in zip(items, intents, strict=True):
                confusion[part][INTENTS.index(want), INTENTS.index(got)] += 1
        counts = [sum(i == c for i in intents) for c in INTENTS]
        print(f"| {name} | {len(items)} | " + " | ".join(pct(c, len(items)) for c in counts)
              + f" | {pct(sum(grounded), len(items))} |")
        if name.startswith("ordinary"):
            kb_named = [g for (_, _, n), g in zip(items, grounded, strict=True) if n]
            print(f"| {name} naming a location of this KB | {len(kb_named)} | | | | "
                  f"{pct(sum(kb_named), len(kb_named))} |")
    for part, matrix in confusion.items():
        print(f"\nConfusion ({part} held-out sets above; rows: true, columns: predicted "
              f"{', '.join(INTENTS)}):\n")
        for name, row in zip(INTENTS, matrix, strict=True):
            print(f"| {name} | " + " | ".join(str(v) for v in row) + " |")


def report_rotations(kb: KnowledgeBase, retriever: HybridRetriever, embedder: Memo,
                     per_description: int) -> None:
    print("\n### AdaCultureSafe items of held-out countries (gate fitted without them)\n")
    print("| held out | n questions | q cultural | q disparaging | n safety | "
          "safety disparaging | safety grounded |")
    print("|---|---|---|---|---|---|---|")
    packaged = packaged_examples()
    for train, test in ROTATIONS:
        examples = packaged + knowledge_base_examples(kb, locations=train)
        gate = fit_gate_on(embedder.encode([e.text for e in examples]), examples,
                           embedder=embedder.name)
        held = knowledge_base_examples(kb, knowledge=per_description, safety=per_description,
                                       locations=test)
        texts = [e.text for e in held]
        intents, grounded = verdicts(gate, retriever, embedder, texts)
        q = [i for e, i in zip(held, intents, strict=True) if e.intent == "cultural_question"]
        s = [(i, g) for e, i, g in zip(held, intents, grounded, strict=True)
             if e.intent == "disparaging"]
        cultural = sum(i != "not_cultural" for i in q)
        print(f"| {' + '.join(test)} | {len(q)} | {pct(cultural, len(q))}"
              f" | {pct(sum(i == 'disparaging' for i in q), len(q))} | {len(s)} | "
              f"{pct(sum(i == 'disparaging' for i, _ in s), len(s))} | "
              f"{pct(sum(g for _, g in s), len(s))} |")


def gate_cost(gate: IntentGate, vector: npt.NDArray[np.float32], repeat: int = 20_000) -> float:
    """Mean wall microseconds of ``gate.predict`` on one vector."""
    one = vector[None, :]
    gate.predict(one)
    start = time.perf_counter()
    for _ in range(repeat):
        gate.predict(one)
    return (time.perf_counter() - start) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ADA, help="AdaCultureSafe directory")
    parser.add_argument("--index-root", type=Path, default=ROOT / "var/bench/intent_gate")
    parser.add_argument("--threshold", type=float, default=0.40)
    parser.add_argument("--per-description", type=int, default=5,
                        help="held-out AdaCultureSafe items per description and kind")
    args = parser.parse_args()
    embedder: Memo | None = None
    for label, data in (("starter KB", None), ("AdaCultureSafe", args.data)):
        name = "starter" if data is None else "adaculturesafe"
        routed = build_routed_retriever(data_dir=data, index_dir=args.index_root / name,
                                        embedder_model=None, threshold=args.threshold,
                                        progress=True)
        retriever = routed.english
        embedder = embedder or Memo(retriever.embedder)
        kb = retriever.knowledge_base
        assert kb is not None
        gate = load_or_train_gate(args.index_root / name, embedder, kb)
        for path, own in (("English (MiniLM)", gate), ("other languages (e5)", routed.other.gate)):
            assert own is not None
            print(f"\n## {label}, {path}: gate thresholds cultural "
                  f"{own.cultural_threshold:.3f}, disparaging {own.disparaging_threshold:.3f}; "
                  f"CV on training data: {own.info}")
        print(f"Similarity thresholds: MiniLM {retriever.threshold}, e5 {routed.other.threshold}")
        report_sets(label, routed, kb)
        if data is not None:
            report_rotations(kb, retriever, embedder, args.per_description)
        cost = gate_cost(gate, embedder.encode(["What's the weather like in Bangkok?"])[0])
        print(f"\nGate cost: {cost:.1f} us per request (predict on one vector; indicative, "
              "shared machine)")


if __name__ == "__main__":
    main()
