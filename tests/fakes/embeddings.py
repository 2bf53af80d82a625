"""The fake server's ``POST /v1/embeddings`` answers: a real embedder's vectors, or a fault.

The vectors come from the real embedder the server is given (the packaged MiniLM in the
tests), so what differs from a real embedding service is only the fault asked for.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import numpy as np

from retrieval.protocols import Embedder

# Model names with a behaviour of their own here (``slow``, ``status-<code>`` and
# ``malformed-json`` behave as in chat).
EMBEDDING_FAULTS = frozenset({"float-lists", "wrong-dimension", "missing-vector"})


def vectors(embedder: Embedder, model: str, texts: list[str], *, impostor: bool,
            asked_before: int) -> np.ndarray:
    """The vectors to answer with.

    Args:
        embedder: the real embedder.
        model: the request's model name; ``wrong-dimension`` adds a number to every vector
            once a request naming it was answered (so a start-up probe succeeds and a later
            answer is wrong); ``missing-vector`` leaves the last text out.
        texts: what to embed.
        impostor: answer vectors of the right dimension that are not the model's (another
            model served under the expected name).
        asked_before: how many earlier requests named ``model``.
    """
    if impostor:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=embedder.dimension)
                for t in texts]
        return np.asarray(rows, dtype=np.float32)
    found = embedder.encode(texts)
    if model == "wrong-dimension" and asked_before > 0:
        found = np.hstack([found, np.ones((len(texts), 1), dtype=np.float32)])
    if model == "missing-vector":
        found = found[:-1]
    return found


def embeddings_body(embedder: Embedder, body: dict[str, Any], *, impostor: bool,
                    asked_before: int) -> bytes:
    """The JSON of a ``list`` of embeddings, base64 float32 or float lists as asked
    (``float-lists``: lists whatever was asked), in reverse order (clients must sort by
    ``index``)."""
    model = str(body.get("model", ""))
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    as_base64 = body.get("encoding_format") == "base64" and model != "float-lists"
    found = vectors(embedder, model, texts, impostor=impostor, asked_before=asked_before)
    data = [{"object": "embedding", "index": i,
             "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode()
             if as_base64 else row.tolist()}
            for i, row in enumerate(found)]
    return json.dumps({"object": "list", "model": model, "data": data[::-1],
                       "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
