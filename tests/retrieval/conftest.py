"""Shared fixtures of the retrieval tests: the real embedder (loaded once) and a tiny KB."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import DescriptionIndex, build_index
from retrieval.knowledge_base import KnowledgeBase, load_knowledge_base
from retrieval.protocols import Embedder

TINY_KB_ROWS = [
    ("th-feet", "Thailand", "In Thailand, pointing your feet at people or at a Buddha image "
     "is rude, because the feet are the lowest part of the body."),
    ("th-head", "Thailand", "Thai people consider the head sacred, so touching someone's "
     "head, even a child's, is offensive."),
    ("th-wai", "Thailand", "The wai, a slight bow with palms pressed together, is the "
     "traditional Thai greeting."),
    ("cn-four", "China", "In China the number four is unlucky because it sounds like the "
     "word for death, while eight is lucky."),
    ("cn-clock", "China", "Giving a clock as a gift is avoided in China, since it evokes "
     "the end of life."),
    ("cn-tea", "China", "When tea is poured, Chinese guests tap two fingers on the table "
     "to thank the host."),
    ("es-dinner", "Spain", "Spaniards usually eat dinner late, often after nine in the "
     "evening."),
    ("es-kiss", "Spain", "In Spain, friends greet each other with two kisses on the "
     "cheeks. Men usually shake hands with men."),
]


class CountingEmbedder:
    """A real embedder, recording the texts of each call (shared by retrieval and app tests)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []
        self.name = inner.name
        self.dimension = inner.dimension

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        return self.inner.encode(texts)


@pytest.fixture(scope="session")
def minilm_embedder() -> SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded once for the whole session."""
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def tiny_kb_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JSONL knowledge base of eight descriptions over three countries."""
    path = tmp_path_factory.mktemp("tiny_kb") / "kb.jsonl"
    lines = [
        json.dumps({"id": i, "location": loc, "description": text, "source": "test"})
        for i, loc, text in TINY_KB_ROWS
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_kb(tiny_kb_file: Path) -> KnowledgeBase:
    return load_knowledge_base(tiny_kb_file)


@pytest.fixture(scope="session")
def tiny_index(tiny_kb: KnowledgeBase, minilm_embedder: SentenceTransformerEmbedder) -> (
    DescriptionIndex
):
    return build_index(tiny_kb.descriptions, minilm_embedder)


class HashingEmbedder:
    """A test Embedder: bag of hashed words, normalised. Fast, deterministic, not semantic."""

    def __init__(self, dimension: int = 64, name: str = "test/hashing") -> None:
        self._dimension = dimension
        self._name = name
        self.calls = 0
        self.fail_after: int | None = None  # raise on the call after this many

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("injected embedder failure")
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, zlib.crc32(word.encode()) % self._dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


@pytest.fixture
def hashing_embedder() -> HashingEmbedder:
    """A fresh fast test embedder (fault injection via ``fail_after``)."""
    return HashingEmbedder()


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory for the exported ONNX models of this session."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def onnx_fp32(onnx_cache: Path) -> Embedder:
    """The packaged MiniLM on onnxruntime, fp32 (exported once per session)."""
    from retrieval.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(cache_dir=onnx_cache, variant="fp32")


@pytest.fixture(scope="session")
def onnx_int8(onnx_cache: Path) -> Embedder:
    """The packaged MiniLM on onnxruntime, int8 (exported once per session)."""
    from retrieval.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(cache_dir=onnx_cache, variant="int8")
