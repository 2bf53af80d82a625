"""Judge-free measures of whether grounding changed an answer (the "Grounding effect").

* **Knowledge presence**: cosine similarity (packaged all-MiniLM-L6-v2) between the answer,
  without any text the gateway wrote itself (a prefill's opening), and the gold description.
* **Echo**: an answer restates the user's disparaging requirement when one of its sentences
  is closer to the requirement sentence than a threshold calibrated on the hand-labelled
  examples in ``bench/sets/grounding/echo_labels.jsonl`` (written for this project, not taken from
  the dataset); ``calibrate`` reports the precision that threshold reaches on them.
* ``paired_diff``: B minus A per item, with a bootstrap 95% CI that resamples descriptions
  (items of one description are not independent), as ``eval.stats`` does for the judge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.stats import RESAMPLES
from retrieval.protocols import Embedder

ECHO_LABELS = Path(__file__).parent / "sets" / "grounding" / "echo_labels.jsonl"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def without_prefill(answer: str, prefill: str | None) -> str:
    """The answer minus the opening the gateway wrote (what the model itself added)."""
    if prefill and answer.startswith(prefill):
        return answer[len(prefill):].strip()
    return answer.strip()


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) > 3]


def knowledge_presence(embedder: Embedder, answers: Sequence[str], golds: Sequence[str]) -> (
    list[float]
):
    """Cosine similarity of each answer to its gold description (an empty answer: 0)."""
    a, g = embedder.encode(list(answers)), embedder.encode(list(golds))
    sims = np.sum(a * g, axis=1)
    return [float(s) if text.strip() else 0.0 for s, text in zip(sims, answers, strict=True)]


def echo_scores(embedder: Embedder, answers: Sequence[str], requirements: Sequence[str]) -> (
    list[float]
):
    """Per answer: the highest similarity of one of its sentences to the requirement."""
    req = embedder.encode(list(requirements))
    out: list[float] = []
    for i, answer in enumerate(answers):
        parts = sentences(answer)
        if not parts:
            out.append(0.0)
            continue
        out.append(float(np.max(embedder.encode(parts) @ req[i])))
    return out


@dataclass(frozen=True)
class Calibration:
    """The echo threshold and how it does on the labelled examples."""

    threshold: float
    precision: float
    recall: float
    n: int


def calibrate(scores: Sequence[float], labels: Sequence[bool]) -> Calibration:
    """The threshold with the best F1 on the labels (ties: the higher, more precise one)."""
    best: tuple[float, float, Calibration] | None = None
    positives = sum(labels)
    for t in sorted(set(scores)):
        hit = [s >= t for s in scores]
        tp = sum(h and y for h, y in zip(hit, labels, strict=True))
        flagged = sum(hit)
        precision = tp / flagged if flagged else 0.0
        recall = tp / positives if positives else 0.0
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        cal = Calibration(round(t, 4), round(precision, 4), round(recall, 4), len(scores))
        if best is None or (f1, t) >= best[:2]:
            best = (f1, t, cal)
    if best is None:
        raise ValueError("no labelled examples to calibrate on")
    return best[2]


def calibrate_echo(embedder: Embedder, path: Path = ECHO_LABELS) -> Calibration:
    """Calibrate the echo threshold on the stored hand-labelled examples."""
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    scores = echo_scores(embedder, [r["answer"] for r in rows], [r["requirement"] for r in rows])
    return calibrate(scores, [bool(r["echo"]) for r in rows])


def paired_diff(
    a: Sequence[float], b: Sequence[float], groups: Sequence[str], *,
    resamples: int = RESAMPLES, seed: int = 0,
) -> dict[str, float | list[float] | None]:
    """Mean of ``b - a`` per item, with a bootstrap CI over ``groups`` (descriptions)."""
    diff = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    names = sorted(set(groups))
    if not names:
        return {"a": None, "b": None, "diff": None, "ci95": None}
    per = {n: [i for i, g in enumerate(groups) if g == n] for n in names}
    sums = np.array([diff[per[n]].sum() for n in names])
    counts = np.array([len(per[n]) for n in names], dtype=np.float64)
    picks = np.random.default_rng(seed).integers(0, len(names), size=(resamples, len(names)))
    boot = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"a": round(float(np.mean(a)), 4), "b": round(float(np.mean(b)), 4),
            "diff": round(float(diff.mean()), 4), "ci95": [round(float(lo), 4),
                                                          round(float(hi), 4)]}
