"""The e5 path's intent gate on non-English text: trained on the English corpus alone, or
with the corpus's other languages too (``retrieval/data/intent_train_multilingual.jsonl``).

Dev only: this is where the choice is made. It scores the dev halves of
``bench/sets/natural`` (short cultural questions, 10 languages besides English) with each
gate and prints, per language, the share the gate calls cultural, next to the gate's
cross-validated rates on its own training data (the ordinary-prompt rate it is fitted to
keep at 1%). The held-out sets are scored by ``bench/intent_gate.py``.

    python bench/multilingual_gate.py [--data ../shared/data/adaculturesafe]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from retrieval.index import encode_in_chunks  # noqa: E402
from retrieval.intent_data import training_examples  # noqa: E402
from retrieval.intent_fit import fit_gate_on  # noqa: E402
from retrieval.knowledge_base import load_knowledge_base  # noqa: E402
from retrieval.multilingual_embedders import E5Embedder  # noqa: E402
from retrieval.progress import progress_bar  # noqa: E402

NATURAL = ROOT / "bench/sets/natural"


def dev_questions() -> dict[str, list[str]]:
    """Language -> the dev natural questions in it."""
    out: dict[str, list[str]] = defaultdict(list)
    for path in sorted(NATURAL.glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line)
            if row["split"] == "dev":
                for lang, text in row["texts"].items():
                    out[lang].append(text)
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="an AdaCultureSafe directory whose items join the training data")
    args = parser.parse_args()
    kb = load_knowledge_base(args.data) if args.data else None
    embedder = E5Embedder("query")
    questions = dev_questions()
    variants = {"English corpus": training_examples(kb, False),
                "+ other languages": training_examples(kb, True)}
    texts = sorted({e.text for ex in variants.values() for e in ex}
                   | {t for ts in questions.values() for t in ts})
    with progress_bar(True, f"Embedding {len(texts)} texts with e5") as bar:
        vectors = dict(zip(texts, encode_in_chunks(embedder, texts, bar), strict=True))
    langs = sorted(questions, key=lambda lang: (lang != "en", lang))
    print("| gate | cultural thr | CV ordinary | CV questions | CV disparaging | "
          + " | ".join(langs) + " |")
    print("|---" * (5 + len(langs)) + "|")
    for name, examples in variants.items():
        gate = fit_gate_on(np.stack([vectors[e.text] for e in examples]), examples,
                           embedder=embedder.name)
        shares = []
        for lang in langs:
            verdicts = gate.predict(np.stack([vectors[t] for t in questions[lang]]))
            shares.append(f"{np.mean([v.cultural for v in verdicts]):.0%}")
        info = gate.info
        print(f"| {name} ({len(examples)}) | {gate.cultural_threshold:.3f} | "
              f"{info['cv_ordinary_cultural']:.1%} | {info['cv_questions_cultural']:.1%} | "
              f"{info['cv_disparaging_cultural']:.1%} | " + " | ".join(shares) + " |")


if __name__ == "__main__":
    main()
