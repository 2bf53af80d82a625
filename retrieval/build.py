"""``build_retriever``: the one entry point that turns settings into a ready retriever.

It loads the knowledge base, loads (or builds and saves) its FAISS index, loads (or fits
and saves beside it) the intent gate on the query embedder's vectors, and puts the
query-embedding cache in front of the query embedder. The gateway, the CLI and the tests
all build their retriever here, so none of them reaches into a retriever afterwards.
"""

from __future__ import annotations

from pathlib import Path

from retrieval.embedder_factory import (
    DEFAULT_BACKEND,
    DEFAULT_CACHE_DIR,
    index_backend,
    load_embedder,
)
from retrieval.embedding_cache import CachedEmbedder
from retrieval.index import DescriptionIndex, build_index
from retrieval.index_store import IndexNotFoundError, load_index, read_manifest, save_index
from retrieval.knowledge_base import load_knowledge_base
from retrieval.progress import progress_bar
from retrieval.protocols import Embedder
from retrieval.retriever import DEFAULT_METHOD, HybridRetriever, RetrievalMethod

DEFAULT_INDEX_DIR = Path("var/index")


def build_retriever(
    *,
    data_dir: Path | None,
    index_dir: Path,
    embedder_model: str | None,
    threshold: float,
    rebuild: bool = False,
    progress: bool = False,
    method: RetrievalMethod = DEFAULT_METHOD,
    embedder: Embedder | None = None,
    embedder_backend: str = DEFAULT_BACKEND,
    embedder_cache_dir: Path = DEFAULT_CACHE_DIR,
    embedder_threads: int = 1,
    query_cache_size: int = 0,
    intent_gate: bool = True,
) -> HybridRetriever:
    """Load the knowledge base and its index (building and saving it if absent).

    Args:
        data_dir: the knowledge base (AdaCultureSafe JSON or JSONL); None: the starter KB.
        index_dir: where the index lives; built there on first use.
        embedder_model: local model path or cached name; None: packaged all-MiniLM-L6-v2.
        threshold: minimum cosine similarity for a passage to be returned.
        rebuild: rebuild even if a matching index exists (also replaces a stale one;
            without it a stale or foreign index raises IndexMismatchError).
        progress: show a progress bar while embedding (descriptions, gate examples).
        method: the query-side method (default: the shipped one).
        embedder: an already loaded embedder, instead of loading ``embedder_model``.
        embedder_backend, embedder_cache_dir, embedder_threads: how ``embedder_model``
            is loaded (:func:`retrieval.embedder_factory.load_embedder`).
        query_cache_size: query embeddings kept in an LRU cache
            (:class:`retrieval.embedding_cache.CachedEmbedder`); 0: no cache.
        intent_gate: load or fit the intent gate (:mod:`retrieval.intent`) on the query
            embedder, after the index is saved (saving swaps the directory); False: none.
    """
    kb = load_knowledge_base(data_dir)
    given = embedder
    embedder = embedder or load_embedder(
        embedder_model, embedder_backend, cache_dir=embedder_cache_dir, threads=embedder_threads
    )
    expected: dict[str, object] = {
        "embedder": embedder.name,
        "dimension": embedder.dimension,
        "layout": method.layout,
        "kb_content_hash": kb.content_hash,
    }
    index: DescriptionIndex | None = None
    if not rebuild:
        try:
            index = load_index(index_dir, expected=expected, embedder=embedder)
        except IndexNotFoundError:
            index = None
    if index is None:
        documents = given or embedder
        if given is None and index_backend(embedder_backend) != embedder_backend:
            documents = load_embedder(
                embedder_model,
                index_backend(embedder_backend),
                cache_dir=embedder_cache_dir,
                threads=embedder_threads,
            )
        with progress_bar(progress, f"Embedding {len(kb.descriptions)} descriptions") as bar:
            index = build_index(kb.descriptions, documents, layout=method.layout, progress=bar)
        save_index(index, index_dir, kb_hash=kb.content_hash, kb_source=kb.source)
    gate = None
    if intent_gate:  # on the query embedder's own vectors, before the cache sees them
        from retrieval.intent import load_or_train_gate

        gate = load_or_train_gate(
            Path(index_dir), embedder, kb, cache_dir=embedder_cache_dir, progress=progress
        )
    if query_cache_size > 0:
        embedder = CachedEmbedder(embedder, query_cache_size)
    return HybridRetriever(
        index,
        embedder,
        threshold=threshold,
        method=method,
        knowledge_base=kb,
        manifest=read_manifest(index_dir),
        gate=gate,
    )
