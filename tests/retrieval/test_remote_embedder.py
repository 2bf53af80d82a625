"""The remote query embedder over real HTTP on loopback, against a fake ``/v1/embeddings``.

The fake (``FakeOpenAI`` of tests/fakes/openai_server.py) answers with the real MiniLM vectors, so
the happy path checks real numbers; its other behaviours inject the faults a real
service produces. vLLM itself serving the model: tests/integration/test_vllm_embedder.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedder import DEFAULT_EMBEDDER_NAME, SentenceTransformerEmbedder
from retrieval.embedder_factory import RemoteSpec, load_embedder
from retrieval.index import build_index, embedder_probe
from retrieval.index_store import IndexMismatchError, load_index, read_manifest, save_index
from retrieval.knowledge_base import KnowledgeBase
from retrieval.remote_embedder import (
    RemoteEmbedder,
    RemoteEmbedderBadResponse,
    RemoteEmbedderTimeout,
    RemoteEmbedderUnavailable,
)
from retrieval.retriever import HybridRetriever
from tests.fakes.openai_server import FakeOpenAI
from tests.retrieval.conftest import TINY_KB_ROWS

TEXTS = [text for _, _, text in TINY_KB_ROWS[:5]]


@pytest.fixture(scope="module")
def fake(minilm_embedder: SentenceTransformerEmbedder) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(embedder=minilm_embedder, delay_s=3.0) as server:
        yield server


def _remote(fake: FakeOpenAI, model: str = DEFAULT_EMBEDDER_NAME, **kw: object) -> (
    RemoteEmbedder
):
    return RemoteEmbedder(fake.base_url, model, **kw)  # type: ignore[arg-type]


def test_vectors_from_the_fake_service_are_the_models_in_input_order(
    fake: FakeOpenAI, minilm_embedder: SentenceTransformerEmbedder
) -> None:
    remote = _remote(fake)
    assert remote.name == DEFAULT_EMBEDDER_NAME and remote.dimension == 384
    local = minilm_embedder.encode(TEXTS)
    got = remote.encode(TEXTS)  # the fake lists the vectors in reverse: order by index
    assert got.dtype == np.float32 and got.shape == local.shape
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(got * local, axis=1)) > 0.9999
    assert remote.encode([]).shape == (0, 384)
    remote.close()


def test_a_service_answering_float_lists_is_understood_too(fake: FakeOpenAI) -> None:
    floats, packed = _remote(fake, "float-lists"), _remote(fake)
    assert np.allclose(floats.encode(TEXTS[:2]), packed.encode(TEXTS[:2]), atol=1e-6)


def test_one_request_per_batch_whatever_its_size(
    fake: FakeOpenAI, tiny_index, tiny_kb: KnowledgeBase
) -> None:
    remote = _remote(fake, truncate_tokens=128)
    retriever = HybridRetriever(tiny_index, remote, threshold=0.3, knowledge_base=tiny_kb)
    before = len(fake.received)
    found = retriever.search_many(["Is it rude to touch a child's head in Bangkok?",
                                   "Which numbers are unlucky in China?",
                                   "When do people eat dinner in Spain?"], 1)
    assert [hits[0].id for hits in found] == ["th-head", "cn-four", "es-dinner"]
    assert len(fake.received) == before + 1
    sent = fake.received[-1]
    assert len(sent["input"]) == 3 and sent["encoding_format"] == "base64"
    assert (sent["truncate_prompt_tokens"], sent["truncation_side"]) == (128, "right")
    _remote(fake, truncate_tokens=0).encode(TEXTS[:1])  # for servers without vLLM's extras
    assert "truncate_prompt_tokens" not in fake.received[-1]


def test_fake_service_timeout_is_a_typed_error(fake: FakeOpenAI) -> None:
    remote = _remote(fake, "slow", dimension=384, timeout_s=0.3)
    with pytest.raises(RemoteEmbedderTimeout, match="timed out"):
        remote.encode(TEXTS[:1])


@pytest.mark.parametrize(("status", "error"), [
    (503, RemoteEmbedderUnavailable), (500, RemoteEmbedderUnavailable),
    (429, RemoteEmbedderUnavailable), (400, RemoteEmbedderBadResponse),
    (401, RemoteEmbedderBadResponse)])
def test_fake_service_error_status_is_a_typed_error(
    fake: FakeOpenAI, status: int, error: type[Exception]
) -> None:
    remote = _remote(fake, f"status-{status}", dimension=384)
    with pytest.raises(error, match=str(status)):
        remote.encode(TEXTS[:2])


@pytest.mark.parametrize(("model", "match"), [
    ("wrong-dimension", "dimension 385, expected 384"),
    ("missing-vector", "returned 1 vectors for 2 texts"),
    ("malformed-json", "malformed answer")])
def test_fake_service_wrong_answer_is_a_typed_error(
    fake: FakeOpenAI, model: str, match: str
) -> None:
    remote = _remote(fake, model) if model == "wrong-dimension" else _remote(
        fake, model, dimension=384)
    with pytest.raises(RemoteEmbedderBadResponse, match=match):
        remote.encode(TEXTS[:2])


def test_unreachable_service_fails_at_start_up() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    with pytest.raises(RemoteEmbedderUnavailable, match="unreachable"):
        load_embedder(remote=RemoteSpec(url=url, timeout_s=1.0))


def test_an_index_built_through_the_service_is_the_in_process_one(
    fake: FakeOpenAI, tiny_kb: KnowledgeBase, tiny_index, tmp_path: Path,
    minilm_embedder: SentenceTransformerEmbedder,
) -> None:
    remote = load_embedder(remote=RemoteSpec(url=fake.base_url))
    built = build_index(tiny_kb.descriptions, remote)
    directory = tmp_path / "index"
    save_index(built, directory, kb_hash=tiny_kb.content_hash, kb_source=tiny_kb.source)
    manifest = read_manifest(directory)
    assert (manifest.embedder, manifest.dimension) == (DEFAULT_EMBEDDER_NAME, 384)
    assert manifest.embedder_probe == embedder_probe(minilm_embedder)
    n = tiny_index.num_vectors
    ours = tiny_index.faiss_index.reconstruct_n(0, n)
    theirs = built.faiss_index.reconstruct_n(0, n)
    assert np.min(np.sum(ours * theirs, axis=1)) > 0.999
    # either embedder may then query the other's index
    expected = {"embedder": DEFAULT_EMBEDDER_NAME, "dimension": 384}
    assert load_index(directory, expected=expected, embedder=minilm_embedder).num_vectors == n


def test_fake_service_serving_another_model_under_the_name_is_refused(
    minilm_embedder: SentenceTransformerEmbedder, tiny_kb: KnowledgeBase, tiny_index,
    tmp_path: Path,
) -> None:
    directory = tmp_path / "index"
    save_index(tiny_index, directory, kb_hash=tiny_kb.content_hash, kb_source=tiny_kb.source)
    expected = {"embedder": DEFAULT_EMBEDDER_NAME, "dimension": 384}
    with FakeOpenAI(embedder=minilm_embedder) as impostor:
        impostor.impostor = True
        remote = _remote(impostor)
        assert remote.name == tiny_index.embedder  # the name alone would pass
        with pytest.raises(IndexMismatchError, match="probe cosine") as refused:
            load_index(directory, expected=expected, embedder=remote)
    assert "CULTURESAFE_REBUILD_INDEX=true" in str(refused.value)
