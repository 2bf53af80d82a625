"""The intent gate: is a request about a culture at all, and if so, a question or disparaging?

Two linear models on the query embedding the retriever already computed (no second
encode; a prediction is a 4 x dim product, microseconds), fitted when the index is built
(:mod:`retrieval.intent_fit`) with the embedder of the index, so the gate follows the
embedder. It is saved next to the index with the embedder's name and a hash of its
training data; :func:`load_or_train_gate` reloads it while both still match.

* The *cultural* model, a three-class logistic regression on the packaged corpus: a
  request is cultural when ``p(cultural_question) + p(disparaging)`` reaches
  :attr:`IntentGate.cultural_threshold`, otherwise it is ``not_cultural``.
* The *voice* model, a binary logistic regression (disparaging vs question) on the cultural
  examples of the corpus and of the knowledge base: a cultural request is ``disparaging``
  when its probability reaches :attr:`IntentGate.disparaging_threshold`.

The knowledge base's items only train the voice model: in the cultural model they taught it
that naming the KB's countries is cultural, which pulled ordinary prompts naming them up
and cost a fifth of the dev cultural questions (BENCHMARKS.md, intent gate). Both
thresholds are chosen by grouped cross-validation on the training data only.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval.intent_data import (
    CULTURAL_QUESTION,
    DISPARAGING,
    NOT_CULTURAL,
    examples_hash,
    training_examples,
)
from retrieval.knowledge_base import KnowledgeBase
from retrieval.progress import progress_bar
from retrieval.protocols import Embedder

GATE_FILE = "intent_gate.json"
FORMAT_VERSION = 1
_log = logging.getLogger(__name__)
# Gates fitted in this process, by (embedder, dimension, data hash): a fit is a pure
# function of them, so a second index of the same data (the CLI, then the gateway; many
# test indexes) saves a copy instead of embedding the corpus again (50 s for e5).
_FITTED: dict[tuple[str, int, str], IntentGate] = {}


@dataclass(frozen=True)
class IntentPrediction:
    """The gate's verdict on one request.

    Attributes:
        intent: one of :data:`~retrieval.intent_data.INTENTS`.
        probabilities: the model's probability of each intent (they sum to 1).
    """

    intent: str
    probabilities: dict[str, float]

    @property
    def cultural(self) -> bool:
        """Whether grounding applies at all (any intent but ``not_cultural``)."""
        return self.intent != NOT_CULTURAL


@dataclass(frozen=True)
class IntentGate:
    """A fitted gate: weights, thresholds and what they were fitted from.

    Attributes:
        coef: (4, dim) weights: the cultural model's three rows in
            :data:`~retrieval.intent_data.INTENTS` order, then the voice model's row.
        intercept: (4,) biases in the same order.
        cultural_threshold: minimum cultural probability to leave ``not_cultural``.
        disparaging_threshold: minimum voice probability for ``disparaging``.
        embedder, dimension: the embedder the gate was fitted on.
        data_hash: :func:`~retrieval.intent_data.examples_hash` of the training data and
            the fitting settings: a change of either refits the gate.
        info: cross-validation figures and counts, for ``index info`` and benchmarks.
    """

    coef: npt.NDArray[np.float32]
    intercept: npt.NDArray[np.float32]
    cultural_threshold: float
    disparaging_threshold: float
    embedder: str
    dimension: int
    data_hash: str
    info: dict[str, Any] = field(default_factory=dict)

    def scores(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """(n, 2) per query vector: the cultural probability and the voice probability."""
        logits = np.atleast_2d(vectors).astype(np.float64) @ self.coef.T + self.intercept
        three = logits[:, :3] - logits[:, :3].max(axis=1, keepdims=True)
        exp = np.exp(three)
        cultural = 1.0 - exp[:, 0] / exp.sum(axis=1)
        voice = 1.0 / (1.0 + np.exp(-logits[:, 3]))
        return np.stack([cultural, voice], axis=1)

    def decide(self, scores: npt.NDArray[np.float64]) -> list[str]:
        """The intent of each row of :meth:`scores`, under the thresholds."""
        return [
            NOT_CULTURAL
            if cultural < self.cultural_threshold
            else DISPARAGING
            if voice >= self.disparaging_threshold
            else CULTURAL_QUESTION
            for cultural, voice in scores.tolist()
        ]

    def predict(self, vectors: npt.NDArray[np.float32]) -> list[IntentPrediction]:
        """The verdict for each query vector (one row per request)."""
        scores = self.scores(vectors)
        return [
            IntentPrediction(
                intent,
                {
                    NOT_CULTURAL: 1.0 - cultural,
                    CULTURAL_QUESTION: cultural * (1.0 - voice),
                    DISPARAGING: cultural * voice,
                },
            )
            for intent, (cultural, voice) in zip(self.decide(scores), scores.tolist(), strict=True)
        ]

    def save(self, directory: Path) -> None:
        """Write the gate to ``directory/intent_gate.json`` atomically."""
        directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "format_version": FORMAT_VERSION,
            **asdict(self),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
        }
        handle, tmp = tempfile.mkstemp(prefix=f".{GATE_FILE}.", dir=directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(payload, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, directory / GATE_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, directory: Path) -> IntentGate:
        """The gate saved in ``directory``; FileNotFoundError or ValueError if unusable."""
        payload = json.loads((directory / GATE_FILE).read_text(encoding="utf-8"))
        if not isinstance(payload, dict) or payload.pop("format_version", None) != FORMAT_VERSION:
            raise ValueError(f"{directory / GATE_FILE}: not a gate of format {FORMAT_VERSION}")
        try:
            coef = np.asarray(payload.pop("coef"), dtype=np.float32)
            intercept = np.asarray(payload.pop("intercept"), dtype=np.float32)
            gate = cls(coef=coef, intercept=intercept, **payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{directory / GATE_FILE}: {exc}") from exc
        if gate.coef.shape != (4, gate.dimension) or gate.intercept.shape != (4,):
            raise ValueError(f"{directory / GATE_FILE}: weights of the wrong shape")
        return gate


def load_or_train_gate(
    index_dir: Path,
    embedder: Embedder,
    kb: KnowledgeBase | None,
    cache_dir: Path | None = None,
    multilingual: bool = False,
    progress: bool = False,
) -> IntentGate:
    """The gate saved beside the index if it was fitted on this embedder and this data,
    else a freshly fitted one (saved there; a read-only directory only logs a warning).

    Args:
        index_dir: the index directory (the gate is ``intent_gate.json`` inside it).
        embedder: the query embedder: the vectors the gate will see.
        kb: the knowledge base of the index (its AdaCultureSafe items join the data).
        cache_dir: where fitted gates are also kept by embedder and data hash, so that
            another index of the same data and embedder (a test's, a replica's) reuses the
            fit instead of re-embedding the training data; None: no shared cache.
        multilingual: ``embedder`` reads many languages, so the corpus's other languages
            join the training data (the e5 path's gate).
        progress: show a progress bar while the training examples are embedded.
    """
    from retrieval.intent_fit import fit_gate, fit_settings

    examples = training_examples(kb, multilingual)
    wanted = examples_hash(examples, fit_settings())
    try:
        gate = IntentGate.load(index_dir)
    except (OSError, ValueError) as exc:
        _log.info("intent gate: fitting (%s)", exc)
    else:
        same_embedder = (gate.embedder, gate.dimension) == (embedder.name, embedder.dimension)
        if same_embedder and gate.data_hash == wanted:
            return gate
        _log.info("intent gate: refitting (embedder or training data changed)")
    key = (embedder.name, embedder.dimension, wanted)
    shared = _shared_dir(cache_dir, embedder, wanted)
    fitted = _FITTED.get(key) or _cached(shared, embedder, wanted)
    if fitted is None:
        label = f"Intent gate: embedding {len(examples)} examples ({embedder.name})"
        with progress_bar(progress, label) as bar:
            fitted = fit_gate(embedder, examples, progress=bar)
    _FITTED[key] = gate = fitted
    if shared is not None:
        try:
            gate.save(shared)
        except OSError as exc:
            _log.warning("intent gate: cannot cache in %s (%s)", shared, exc)
    try:
        gate.save(index_dir)
    except OSError as exc:
        _log.warning("intent gate: cannot save in %s (%s); fitted in memory", index_dir, exc)
    return gate


def _shared_dir(cache_dir: Path | None, embedder: Embedder, data_hash: str) -> Path | None:
    if cache_dir is None:
        return None
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in embedder.name)
    return Path(cache_dir) / "intent-gates" / f"{name}-{embedder.dimension}-{data_hash[:16]}"


def _cached(shared: Path | None, embedder: Embedder, data_hash: str) -> IntentGate | None:
    """The gate kept in the shared cache for this embedder and data, if usable."""
    if shared is None:
        return None
    try:
        gate = IntentGate.load(shared)
    except (OSError, ValueError):
        return None
    same = (gate.embedder, gate.dimension, gate.data_hash)
    return gate if same == (embedder.name, embedder.dimension, data_hash) else None
