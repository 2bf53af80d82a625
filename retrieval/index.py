"""The FAISS index of descriptions: build, search, and its on-disk form.

A directory holds ``index.faiss`` (inner product over normalised vectors, i.e. cosine),
``metadata.json`` (the passages and which passage each vector belongs to; never pickle)
and ``manifest.json`` (what built it, from which data, and the SHA-256 of both files).
Writing and loading the directory lives in :mod:`retrieval.index_store`.

The manifest also keeps the vector of one probe sentence (:func:`embedder_probe`): the
model's name and dimension say which embedder was meant, the probe shows which one
actually answered. A remote embedding service that serves another model under the
expected name, or with other pooling, is refused at load time, while the backends of
one model (torch, onnx, onnx-int8, vLLM) agree on it to cosine > 0.99.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from retrieval.models import Description
from retrieval.progress import ProgressCallback
from retrieval.protocols import Embedder

if TYPE_CHECKING:
    import faiss

FORMAT_VERSION = 1
# What text stands for a description in the index. "location: description" names the
# place even in descriptions that never do ("Do not point at items with your foot."), so a
# query about Thai bargaining finds them; "description" is the plain baseline.
LAYOUT_PLAIN = "description"
LAYOUT_LOCATED = "location: description"
LAYOUTS = (LAYOUT_PLAIN, LAYOUT_LOCATED)
DEFAULT_LAYOUT = LAYOUT_LOCATED
ENCODE_CHUNK = 64
PROBE_TEXT = "In Japan, guests remove their shoes before entering a home."
PROBE_DECIMALS = 4
# Measured on the probe, cosine to torch: onnx fp32 1.0000, onnx-int8 0.9944, vLLM
# 1.0000; the same MiniLM pooled wrongly: last token 0.911, CLS 0.657; random 0.0.
PROBE_MIN_COSINE = 0.98


def encode_in_chunks(
    embedder: Embedder, texts: Sequence[str], progress: ProgressCallback | None = None
) -> npt.NDArray[np.float32]:
    """``embedder.encode(texts)`` in chunks of :data:`ENCODE_CHUNK`, calling ``progress``
    with (texts done, total) after each."""
    chunks = []
    for start in range(0, len(texts), ENCODE_CHUNK):
        chunks.append(embedder.encode(texts[start : start + ENCODE_CHUNK]))
        if progress is not None:
            progress(min(start + ENCODE_CHUNK, len(texts)), len(texts))
    return np.concatenate(chunks) if chunks else embedder.encode([])


class PassageRecord(BaseModel):
    """What the index remembers of one description (no benchmark questions)."""

    model_config = ConfigDict(frozen=True)

    id: str
    location: str
    description: str
    source: str | None = None


class IndexManifest(BaseModel):
    """Provenance of an index directory, checked before the index is used."""

    model_config = ConfigDict(frozen=True)

    format_version: int
    embedder: str
    dimension: int
    layout: str
    kb_content_hash: str
    kb_source: str
    num_passages: int
    num_vectors: int
    built_at: str
    versions: dict[str, str]
    checksums: dict[str, str]  # file name -> sha256 hex
    # The builder's vector of PROBE_TEXT, rounded; absent in indexes built before it.
    embedder_probe: tuple[float, ...] | None = None


def embedder_probe(embedder: Embedder) -> tuple[float, ...]:
    """The vector ``embedder`` gives :data:`PROBE_TEXT`, rounded: its fingerprint."""
    return tuple(round(float(x), PROBE_DECIMALS) for x in embedder.encode([PROBE_TEXT])[0])


def probe_cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of two probe vectors (0.0 when their lengths differ)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        return 0.0
    return float(x @ y / max(float(np.linalg.norm(x) * np.linalg.norm(y)), 1e-12))


def text_to_index(location: str, description: str, layout: str) -> str:
    """The text embedded for one description under ``layout``."""
    if layout == LAYOUT_PLAIN:
        return description
    if layout == LAYOUT_LOCATED:
        return f"{location}: {description}"
    raise ValueError(f"unknown index layout {layout!r}; expected one of {LAYOUTS}")


@dataclass(frozen=True)
class DescriptionIndex:
    """A FAISS inner-product index whose vectors each point to one passage.

    Attributes:
        faiss_index: the FAISS index (``IndexFlatIP``), read-only once built.
        passages: one record per description, in knowledge-base order.
        rows: for each vector, the position of its passage in ``passages``.
        embedder: the embedder's name; dimension, layout: as in the manifest.
        probe: the builder's :func:`embedder_probe` (None: unknown, older index).
    """

    faiss_index: faiss.Index
    passages: tuple[PassageRecord, ...]
    rows: npt.NDArray[np.int64]
    embedder: str
    dimension: int
    layout: str
    probe: tuple[float, ...] | None = None

    @property
    def num_vectors(self) -> int:
        """How many vectors the FAISS index holds."""
        return int(self.rows.shape[0])

    def search(
        self, queries: npt.NDArray[np.float32], n: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The ``n`` nearest vectors of each query: (scores, vector rows), -1 for none."""
        n = max(1, min(n, self.num_vectors))
        scores, ids = self.faiss_index.search(np.ascontiguousarray(queries, dtype=np.float32), n)
        return scores, ids


def build_index(
    descriptions: Sequence[Description],
    embedder: Embedder,
    *,
    layout: str = DEFAULT_LAYOUT,
    progress: ProgressCallback | None = None,
) -> DescriptionIndex:
    """Embed every description (as ``layout`` says) into a flat inner-product index.

    Args:
        descriptions: the knowledge base's descriptions; only their text goes in.
        embedder: turns texts into normalised vectors.
        layout: which texts represent a description (see :data:`LAYOUTS`).
        progress: called with (vectors done, vectors total) after each chunk.
    """
    import faiss

    if not descriptions:
        raise ValueError("cannot build an index of an empty knowledge base")
    # One vector per description today; ``rows`` lets a layout add several (e.g. chunks).
    texts = [text_to_index(d.location, d.description, layout) for d in descriptions]
    rows = list(range(len(texts)))
    probe = embedder_probe(embedder)
    index = faiss.IndexFlatIP(embedder.dimension)
    vectors = encode_in_chunks(embedder, texts, progress)
    if vectors.shape[1] != embedder.dimension:
        raise ValueError(
            f"embedder {embedder.name!r} returned dimension {vectors.shape[1]}, "
            f"declared {embedder.dimension}"
        )
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    passages = tuple(
        PassageRecord(id=d.id, location=d.location, description=d.description, source=d.source)
        for d in descriptions
    )
    return DescriptionIndex(
        faiss_index=index,
        passages=passages,
        rows=np.asarray(rows, dtype=np.int64),
        embedder=embedder.name,
        dimension=embedder.dimension,
        layout=layout,
        probe=probe,
    )
