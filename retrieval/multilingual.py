"""Build the multilingual side of retrieval and put it beside the English retriever.

:func:`with_multilingual` takes the English :class:`~retrieval.retriever.HybridRetriever`
(as :func:`retrieval.build.build_retriever` returns it) and gives the
:class:`~retrieval.routing.RoutedRetriever` that serves both;
:func:`build_routed_retriever` does both steps from the same options. Its two indexes (the same
descriptions embedded by e5 as passages, and by USE) are saved beside the English one
(``<index_dir>-e5`` and ``<index_dir>-use``, checksummed and provenance-checked by
:mod:`retrieval.index_store` like it) and rebuilt when the knowledge base changes.
Building them embeds every description twice more: for AdaCultureSafe's 1,126, about a
minute and a half of one core for e5 (it is 12 layers) and 20 s for USE; loading takes
a second or two. The e5 path's intent gate (the English one's training data embedded by
e5 as queries) is fitted once and saved in ``<index_dir>-e5`` too: about 50 s for the
packaged corpus alone, several minutes with AdaCultureSafe's items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrieval.build import build_retriever
from retrieval.crosslingual import DEFAULT_THRESHOLD, USE_WEIGHT, CrossLingualRetriever
from retrieval.embedder_factory import DEFAULT_CACHE_DIR
from retrieval.embedding_cache import CachedEmbedder
from retrieval.index import DescriptionIndex, build_index
from retrieval.index_store import (
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    load_index,
    save_index,
)
from retrieval.intent import load_or_train_gate
from retrieval.knowledge_base import KnowledgeBase
from retrieval.multilingual_embedders import E5Embedder, UseEmbedder
from retrieval.progress import progress_bar
from retrieval.protocols import Embedder
from retrieval.retriever import HybridRetriever
from retrieval.routing import RoutedRetriever


def sibling_dir(index_dir: Path, suffix: str) -> Path:
    """Where an extra index of the knowledge base lives: next to ``index_dir``."""
    index_dir = Path(index_dir)
    return index_dir.with_name(f"{index_dir.name}-{suffix}")


def load_or_build(
    kb: KnowledgeBase, directory: Path, builder: Embedder, layout: str, *, rebuild: bool,
    progress: bool = False,
) -> DescriptionIndex:
    """The index of ``kb`` by ``builder`` in ``directory``, built and saved if absent or
    stale (an index of other content, model or layout is rebuilt, not refused: it is
    derived data that only this module writes)."""
    expected: dict[str, object] = {
        "embedder": builder.name,
        "dimension": builder.dimension,
        "layout": layout,
        "kb_content_hash": kb.content_hash,
    }
    if not rebuild:
        try:
            return load_index(directory, expected=expected, embedder=builder)
        except (IndexNotFoundError, IndexMismatchError, IndexCorruptError):
            pass  # absent, stale or damaged: rebuilt below
    label = f"Embedding {len(kb.descriptions)} descriptions ({builder.name})"
    with progress_bar(progress, label) as bar:
        index = build_index(kb.descriptions, builder, layout=layout, progress=bar)
    save_index(index, directory, kb_hash=kb.content_hash, kb_source=kb.source)
    return index


def with_multilingual(
    english: HybridRetriever,
    index_dir: Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    use_weight: float = USE_WEIGHT,
    rebuild: bool = False,
    threads: int = 1,
    query_cache_size: int = 0,
    intent_gate: bool = True,
    gate_cache_dir: Path | None = None,
    progress: bool = False,
) -> RoutedRetriever:
    """``english`` plus the cross-lingual path over the same knowledge base.

    Args:
        english: the English retriever; it must know its knowledge base.
        index_dir: the English index's directory (the extra ones go beside it).
        threshold: minimum e5 cosine of a returned passage (non-English queries).
        use_weight: weight of USE in the cross-lingual ranking; 0: e5 alone (USE is then
            neither loaded nor indexed).
        rebuild: rebuild the extra indexes even if they match.
        threads: CPU threads of each multilingual engine.
        query_cache_size: e5 query embeddings kept in an LRU cache; 0: none.
        intent_gate: load or fit the e5 path's intent gate (after its index is saved).
        gate_cache_dir: shared cache of fitted gates (:func:`load_or_train_gate`).
        progress: show progress bars while embedding.
    """
    kb = english.knowledge_base
    if kb is None:
        raise ValueError("the English retriever does not know its knowledge base")
    layout = english.index.layout
    passages = E5Embedder("passage", threads=threads)
    e5_dir = sibling_dir(index_dir, "e5")
    e5_index = load_or_build(kb, e5_dir, passages, layout, rebuild=rebuild, progress=progress)
    queries: Embedder = passages.with_role("query")
    gate = (
        load_or_train_gate(e5_dir, queries, kb, cache_dir=gate_cache_dir, multilingual=True,
                           progress=progress)
        if intent_gate
        else None
    )
    if query_cache_size > 0:
        queries = CachedEmbedder(queries, query_cache_size)
    use: UseEmbedder | None = None
    use_index = None
    if use_weight:
        use = UseEmbedder(threads=threads)
        use_index = load_or_build(
            kb, sibling_dir(index_dir, "use"), use, layout, rebuild=rebuild, progress=progress
        )
    other = CrossLingualRetriever(
        e5_index, queries, use_index, use, threshold=threshold, use_weight=use_weight,
        gate=gate,
        detector=english.detector if english.method.location_consistent else None,
    )
    return RoutedRetriever(english, other)


def build_routed_retriever(
    *, multilingual_threshold: float = DEFAULT_THRESHOLD, **options: Any
) -> RoutedRetriever:
    """:func:`retrieval.build.build_retriever` with ``options`` (the English path), then
    :func:`with_multilingual` beside it, with the same index directory, rebuild flag,
    thread count, query cache size and intent gate option."""
    english = build_retriever(**options)
    return with_multilingual(
        english,
        options["index_dir"],
        threshold=multilingual_threshold,
        rebuild=bool(options.get("rebuild", False)),
        threads=int(options.get("embedder_threads", 1)),
        query_cache_size=int(options.get("query_cache_size", 0)),
        intent_gate=bool(options.get("intent_gate", True)),
        gate_cache_dir=options.get("embedder_cache_dir", DEFAULT_CACHE_DIR),
        progress=bool(options.get("progress", False)),
    )
