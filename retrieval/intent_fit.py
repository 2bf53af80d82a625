"""Fitting the intent gate: two logistic regressions, thresholds from grouped cross-validation.

Every choice is made on the training examples only. Out-of-fold probabilities come from
:class:`~sklearn.model_selection.GroupKFold` over the examples' groups (a country for
cultural examples, so each is scored by a model that never saw its country). The
thresholds are the out-of-fold quantiles that let through at most :data:`ORDINARY_RATE` of
the ordinary prompts and give at most :data:`QUESTION_RATE` of the cultural questions the
disparaging voice. In the voice model each source of a class (the packaged corpus, the
knowledge base) weighs the same, so the dataset's long adversarial paragraphs do not
drown the packaged short requests, which are closer to what users type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval.index import encode_in_chunks
from retrieval.intent import IntentGate
from retrieval.intent_data import (
    CULTURAL_QUESTION,
    DISPARAGING,
    INTENTS,
    PACKAGED,
    IntentExample,
    examples_hash,
)
from retrieval.progress import ProgressCallback
from retrieval.protocols import Embedder

# Out-of-fold rates the thresholds allow (targets: <= 2% of ordinary prompts grounded, no
# neutral question in the disparaging voice); C, the inverse regularisation strength, was
# chosen by the same cross-validation and the dev sets (BENCHMARKS.md, intent gate).
ORDINARY_RATE = 0.01
QUESTION_RATE = 0.01
C = 4.0
FOLDS = 5
# Share of a class's weight carried by the knowledge base's items, per model and class
# (the packaged corpus carries the rest). In the cultural model a larger share taught it
# that naming the KB's countries is cultural, which pulled ordinary prompts naming them
# over the threshold and cost a fifth of the dev cultural questions.
CULTURAL_KB_SHARE = {INTENTS.index(CULTURAL_QUESTION): 0.1, INTENTS.index(DISPARAGING): 0.25}
VOICE_KB_SHARE = {0: 0.5, 1: 0.5}

Vectors = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


def class_weights(
    labels: Labels, sources: Sequence[str], kb_share: dict[int, float]
) -> npt.NDArray[np.float64]:
    """Sample weights: each class weighs the same; within a class that also has knowledge
    base items, those carry ``kb_share[label]`` of its weight and the packaged ones the rest."""
    packaged = np.asarray(sources) == PACKAGED
    weights = np.ones(len(labels))
    classes = np.unique(labels)
    for label in classes:
        total = len(labels) / len(classes)
        in_class = labels == label
        parts = [(in_class & packaged, 1.0), (in_class & ~packaged, 0.0)]
        if (in_class & packaged).any() and (in_class & ~packaged).any():
            share = kb_share.get(int(label), 0.0)
            parts = [(in_class & packaged, 1.0 - share), (in_class & ~packaged, share)]
        for members, part in parts:
            if members.any():
                weights[members] = total * part / members.sum()
    return weights


def _fit(
    vectors: Vectors, labels: Labels, sources: Sequence[str], kb_share: dict[int, float]
) -> Any:
    from sklearn.linear_model import LogisticRegression

    weights = class_weights(labels, sources, kb_share)
    return LogisticRegression(C=C, max_iter=5000).fit(vectors, labels, sample_weight=weights)


def fit_out_of_fold(
    vectors: Vectors,
    labels: Labels,
    examples: Sequence[IntentExample],
    kb_share: dict[int, float],
) -> tuple[Any, npt.NDArray[np.float64]]:
    """The model fitted on all examples, and each example's class probabilities from a
    model fitted without its group."""
    from sklearn.model_selection import GroupKFold

    groups = [e.group for e in examples]
    sources = np.array([e.source for e in examples])
    probabilities = np.zeros((len(labels), len(np.unique(labels))))
    for train, test in GroupKFold(n_splits=FOLDS).split(vectors, labels, groups):
        model = _fit(vectors[train], labels[train], list(sources[train]), kb_share)
        probabilities[test] = model.predict_proba(vectors[test])
    return _fit(vectors, labels, list(sources), kb_share), probabilities


def fit_settings() -> str:
    """Every setting of the fit, recorded in the gate's data hash (changing one refits)."""
    shares = (sorted(CULTURAL_KB_SHARE.items()), sorted(VOICE_KB_SHARE.items()))
    return f"v1 C={C} folds={FOLDS} rates={ORDINARY_RATE},{QUESTION_RATE} shares={shares}"


def _threshold(scores: npt.NDArray[np.float64], rate: float) -> float:
    """The lowest threshold that at most ``rate`` of ``scores`` reach; never below 0.5."""
    return max(float(np.quantile(scores, 1 - rate, method="higher")) + 1e-6, 0.5)


def fit_gate(
    embedder: Embedder,
    examples: Sequence[IntentExample],
    progress: ProgressCallback | None = None,
) -> IntentGate:
    """Embed ``examples`` with ``embedder`` (``progress`` called after each chunk) and fit
    the gate on them."""
    vectors = encode_in_chunks(embedder, [e.text for e in examples], progress)
    return fit_gate_on(vectors, examples, embedder=embedder.name)


def fit_gate_on(
    vectors: Vectors, examples: Sequence[IntentExample], *, embedder: str
) -> IntentGate:
    """Fit the gate on already embedded ``examples`` (rows of ``vectors``)."""
    labels = np.array([INTENTS.index(e.intent) for e in examples], dtype=np.int64)
    if set(labels[[e.source == PACKAGED for e in examples]].tolist()) != {0, 1, 2}:
        raise ValueError("intent gate: the packaged corpus must hold every intent")
    three, three_oof = fit_out_of_fold(vectors, labels, examples, CULTURAL_KB_SHARE)
    ordinary = labels == 0
    cultural_threshold = _threshold(1.0 - three_oof[ordinary, 0], ORDINARY_RATE)
    rows = np.flatnonzero(~ordinary).tolist()
    disparaging = (labels[rows] == INTENTS.index(DISPARAGING)).astype(np.int64)
    voice, voice_oof = fit_out_of_fold(
        vectors[rows], disparaging, [examples[i] for i in rows], VOICE_KB_SHARE
    )
    disparaging_threshold = _threshold(voice_oof[disparaging == 0, 1], QUESTION_RATE)
    cultural_oof = 1.0 - three_oof[:, 0]
    sources = np.array([e.source for e in examples])
    info = {
        "examples": {
            source: [int(((sources == source) & (labels == i)).sum()) for i in range(3)]
            for source in sorted(set(sources.tolist()))
        },
        "cv_folds": FOLDS,
        "cv_ordinary_cultural": _share(cultural_oof[ordinary], cultural_threshold),
        "cv_questions_cultural": _share(cultural_oof[labels == 1], cultural_threshold),
        "cv_disparaging_cultural": _share(cultural_oof[labels == 2], cultural_threshold),
        "cv_questions_disparaging": _share(voice_oof[disparaging == 0, 1], disparaging_threshold),
        "cv_disparaging_voice": _share(voice_oof[disparaging == 1, 1], disparaging_threshold),
    }
    return IntentGate(
        coef=np.vstack([three.coef_, voice.coef_]).astype(np.float32),
        intercept=np.concatenate([three.intercept_, voice.intercept_]).astype(np.float32),
        cultural_threshold=cultural_threshold,
        disparaging_threshold=disparaging_threshold,
        embedder=embedder,
        dimension=int(vectors.shape[1]),
        data_hash=examples_hash(examples, fit_settings()),
        info=info,
    )


def _share(scores: npt.NDArray[np.float64], threshold: float) -> float:
    return round(float((scores >= threshold).mean()), 4)
