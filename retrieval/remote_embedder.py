"""The query embedder as a service: any OpenAI-compatible ``POST /v1/embeddings``.

On a GPU host the gateway should not spend a CPU core per query on MiniLM while the GPU
idles between decode steps: vLLM serves the same model with its pooling runner
(``vllm serve <model> --runner pooling``; docker-compose.yml) and the gateway sends it
the texts. Each :meth:`RemoteEmbedder.encode` is ONE request, whatever the number of
texts, so the query batcher's batches and the query cache's misses stay one round trip.

The client is kept for the process (pooled keep-alive connections, thread-safe: the
batcher calls it from worker threads), with a connect and a read timeout; a refused
connection is retried once by the transport. Every failure is a typed
:class:`RemoteEmbedderError` (a :class:`~retrieval.errors.RetrievalError`), so the
gateway treats it like any retrieval failure: 503, or served ungrounded under
``retrieval_fail_open``. Vectors travel as base64 float32 (less to parse than JSON
numbers); a server that answers with plain float lists is understood too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from retrieval.errors import RetrievalError

_DIMENSION_PROBE = "Is the embedding service up?"


class RemoteEmbedderError(RetrievalError):
    """The embedding service failed; the message names the URL and what went wrong."""


class RemoteEmbedderTimeout(RemoteEmbedderError):
    """The embedding service did not answer within the timeout."""


class RemoteEmbedderUnavailable(RemoteEmbedderError):
    """The embedding service cannot be reached, or answered 429 or 5xx."""


class RemoteEmbedderBadResponse(RemoteEmbedderError):
    """The service refused the request (4xx) or its answer is not what was asked for."""


class RemoteEmbedder:
    """The :class:`~retrieval.protocols.Embedder` behind an OpenAI-compatible endpoint.

    Args:
        base_url: the API root, e.g. ``http://embedder:8000/v1`` (``/embeddings`` is added).
        model: the served model name sent in each request; also the recorded :attr:`name`,
            so a vLLM serving all-MiniLM-L6-v2 as ``sentence-transformers/all-MiniLM-L6-v2``
            shares its indexes with the in-process embedder (the manifest's probe vector
            catches a server that serves something else under that name).
        api_key: sent as ``Authorization: Bearer``; None: no header.
        timeout_s, connect_timeout_s: read and connect timeouts of one request.
        truncate_tokens: vLLM's ``truncate_prompt_tokens``, sent with
            ``truncation_side: right``: a longer text keeps its first N tokens, as
            sentence-transformers does (-1: the served model's limit, the default,
            so vectors match the in-process ones); 0: neither field is sent (servers
            that reject vLLM's extras), and a text over the server's limit fails (400).
        dimension: the vector length if known; None: asked of the server by embedding
            one probe text now (so a wrong URL or model fails at start-up).
        max_connections: connections kept to the service.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 2.0,
        truncate_tokens: int = -1,
        dimension: int | None = None,
        max_connections: int = 8,
    ) -> None:
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._extra: dict[str, Any] = {} if truncate_tokens == 0 else {
            "truncate_prompt_tokens": truncate_tokens, "truncation_side": "right"}
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections)
        self._client = httpx.Client(
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            transport=httpx.HTTPTransport(retries=1, limits=limits),
        )
        self._dimension = dimension or 0
        if dimension is None:
            self._dimension = self._request([_DIMENSION_PROBE]).shape[1]

    @property
    def name(self) -> str:
        """The served model's name, as recorded in index manifests."""
        return self._model

    @property
    def dimension(self) -> int:
        """Length of every vector :meth:`encode` returns."""
        return self._dimension

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` in one request; rows are L2-normalised float32, shape (n, dim)."""
        if len(texts) == 0:
            return np.zeros((0, self._dimension), dtype=np.float32)
        vectors = self._request(list(texts))
        if vectors.shape[1] != self._dimension:
            raise RemoteEmbedderBadResponse(
                f"{self._url} returned vectors of dimension {vectors.shape[1]}, expected "
                f"{self._dimension} (model {self._model!r}); is it serving another model?"
            )
        return vectors

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def _request(self, texts: list[str]) -> npt.NDArray[np.float32]:
        body = {"model": self._model, "input": texts, "encoding_format": "base64",
                **self._extra}
        try:
            response = self._client.post(self._url, json=body)
        except httpx.TimeoutException as exc:
            raise RemoteEmbedderTimeout(f"{self._url} timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise RemoteEmbedderUnavailable(f"{self._url} unreachable: {exc!r}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RemoteEmbedderUnavailable(
                f"{self._url} answered {response.status_code}: {response.text[:200]}")
        if response.status_code != 200:
            raise RemoteEmbedderBadResponse(
                f"{self._url} refused the request ({response.status_code}): "
                f"{response.text[:300]}")
        return _vectors(response, len(texts), self._url)


def _vectors(response: httpx.Response, count: int, url: str) -> npt.NDArray[np.float32]:
    """The normalised rows of an embeddings answer, in input order."""
    try:
        items = sorted(response.json()["data"], key=lambda item: item["index"])
        rows = [_row(item["embedding"]) for item in items]
        vectors = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise RemoteEmbedderBadResponse(f"{url} sent a malformed answer: {exc!r}") from exc
    if vectors.shape[0] != count:
        raise RemoteEmbedderBadResponse(f"{url} returned {vectors.shape[0]} vectors for "
                                        f"{count} texts")
    if not np.all(np.isfinite(vectors)):
        raise RemoteEmbedderBadResponse(f"{url} returned non-finite vectors")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise RemoteEmbedderBadResponse(f"{url} returned an all-zero vector")
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def _row(embedding: object) -> npt.NDArray[np.float32]:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding, validate=True), dtype="<f4")
    if isinstance(embedding, list) and embedding:
        return np.asarray(embedding, dtype=np.float32)
    raise TypeError(f"an embedding must be base64 or a list of floats, got {embedding!r:.60}")
