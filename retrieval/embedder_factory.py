"""``load_embedder``: the one place an embedder is built for the gateway and the CLI.

Three backends of the same model, interchangeable in an index (they record one name):
``torch`` (sentence-transformers), ``onnx`` (onnxruntime, fp32: the torch vectors at
1.4-2.6x less CPU) and ``onnx-int8`` (onnxruntime, int8 weights: 2-4x less CPU, recall
within 0.3 point of torch on the full AdaCultureSafe data; the default). Numbers in
:mod:`retrieval.onnx_embedder`. Both onnx backends export the model into ``cache_dir``
on first use (5 s, 19 s in a process that has not imported torch yet; needs torch once),
then run without torch.

A fourth way runs no model in the process: ``remote`` (a :class:`RemoteSpec`) sends the
texts to an OpenAI-compatible ``/v1/embeddings`` service, e.g. vLLM's pooling runner on
the GPU host (:mod:`retrieval.remote_embedder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from retrieval.embedder import DEFAULT_EMBEDDER_NAME, EmbedderLoadError, SentenceTransformerEmbedder
from retrieval.protocols import Embedder

EmbedderBackend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[EmbedderBackend, ...] = get_args(EmbedderBackend)
DEFAULT_BACKEND: EmbedderBackend = "onnx-int8"
DEFAULT_CACHE_DIR = Path("var/models/embedder")


@dataclass(frozen=True)
class RemoteSpec:
    """Where the remote embedding service is (:class:`~retrieval.remote_embedder.RemoteEmbedder`).

    ``model`` is the served name, recorded in index manifests: serve all-MiniLM-L6-v2 as
    ``sentence-transformers/all-MiniLM-L6-v2`` (the default) and the in-process and
    remote embedders share indexes.
    """

    url: str
    model: str = DEFAULT_EMBEDDER_NAME
    api_key: str | None = None
    timeout_s: float = 10.0
    truncate_tokens: int = -1  # see RemoteEmbedder; 0: send no truncation fields


def load_embedder(
    model: str | None = None,
    backend: str = DEFAULT_BACKEND,
    *,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    threads: int = 1,
    remote: RemoteSpec | None = None,
) -> Embedder:
    """The embedder of ``model`` (None: the packaged all-MiniLM-L6-v2) on ``backend``.

    Args:
        model: local model directory or cached name; None: the packaged default.
        backend: one of :data:`BACKENDS`.
        cache_dir: where the onnx backends keep their exported models.
        threads: CPU threads of the onnxruntime session (the torch backend's threads
            are process-wide: :func:`retrieval.embedding_cache.set_torch_threads`);
            0: the runtime's default.
        remote: when given, the remote service instead (``model``, ``backend`` and the
            rest are then unused); it is asked once for its dimension.

    Raises:
        EmbedderLoadError: unknown backend, or a model that cannot be loaded/exported.
        RemoteEmbedderError: the remote service failed its first request.
    """
    if remote is not None:
        from retrieval.remote_embedder import RemoteEmbedder

        return RemoteEmbedder(remote.url, remote.model, api_key=remote.api_key,
                              timeout_s=remote.timeout_s,
                              truncate_tokens=remote.truncate_tokens)
    if backend == "torch":
        return SentenceTransformerEmbedder(model)
    if backend in ("onnx", "onnx-int8"):
        from retrieval.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(
            model,
            cache_dir=cache_dir,
            variant="int8" if backend == "onnx-int8" else "fp32",
            threads=threads,
        )
    raise EmbedderLoadError(
        f"unknown embedder backend {backend!r}: choose one of {', '.join(BACKENDS)}"
    )


def index_backend(backend: str) -> str:
    """The backend that embeds the descriptions of an index for queries on ``backend``.

    Descriptions are embedded once, so they get full precision: int8 queries search fp32
    vectors (the torch ones to 1e-6). On the full AdaCultureSafe data both choices stay
    within a point of torch (R@1 -0.2/-0.3 point with an fp32 index, -0.5/-0.2 with an
    int8 one), so an index built by any backend of the model stays valid.
    """
    return "onnx" if backend == "onnx-int8" else backend
