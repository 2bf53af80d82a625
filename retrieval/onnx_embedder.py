"""The query embedder on onnxruntime (fp32 or int8), without torch on the request path.

Same model, same vectors (fp32: cosine 1.0000 to sentence-transformers; int8: ~0.994).
Measured on 2 shared AVX2 cores, CPU ms per text alone (``bench/retrieval.py
--backends``): 20-token questions torch 24.5, fp32 9.5, int8 6.0; 86-token (65-word)
queries torch 46.4, fp32 32.3, int8 22.5. The model is exported from the local weights
on first use (:mod:`retrieval.onnx_export`).

The recorded :attr:`name` is the model's, whatever the backend, so an index built by torch
is valid for onnx and int8 queries and the other way round, while an index built with
another model is still rejected. On the full AdaCultureSafe data, torch index + int8
queries gave knowledge R@1/R@5 0.720/0.927 and safety 0.629/0.914 against torch's
0.722/0.929 and 0.632/0.915; int8 for the index too 0.717/0.931 and 0.630/0.913. The
index is still embedded in fp32 for an int8 gateway
(:func:`retrieval.embedder_factory.index_backend`). Tokenisation matches
sentence-transformers (``max_seq_length`` of ``sentence_bert_config.json``, right
truncation); padding is done here per chunk.

No lock: ``InferenceSession.run`` is thread-safe and the tokenizer is configured once in
the constructor and then only read, so concurrent calls run in parallel. A call's texts
are sorted by length and run in chunks of similar length and at most :data:`TOKENS`
tokens: on CPU a bigger batch gains nothing per token, and padding costs a lot. int8
runs one text at a time: its activations are quantised per run (one scale per tensor), so
in a chunk a vector would depend on its batch-mates (cosine ~0.985 to itself alone), and
the query batcher and the query cache rely on a text always getting the same vector. It
costs at most ~10% CPU on short texts, nothing measurable on long ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval.embedder import (
    DEFAULT_EMBEDDER_NAME,
    EmbedderLoadError,
    default_model_path,
    embedder_name,
)
from retrieval.onnx_export import INPUTS, Variant, ensure_exported, variant_dir

DEFAULT_MAX_SEQ_LENGTH = 256
# Most (padded) tokens per model run. Measured on 2 AVX2 cores: batches gain nothing per
# token on CPU, and big ones (32 x 100 tokens) cost ~30% more per token than small ones.
TOKENS = 256


class OnnxEmbedder:
    """The :class:`~retrieval.protocols.Embedder` on an onnxruntime CPU session.

    Args:
        model_name_or_path: a local sentence-transformers model directory; ``None`` (or
            the default's public name) selects the packaged all-MiniLM-L6-v2.
        cache_dir: where exported models are kept (exported there if missing or stale).
        variant: ``"fp32"`` or ``"int8"``.
        threads: onnxruntime intra-op threads; 0: onnxruntime's default (all cores).
        batch_size: most texts per model run (also at most :data:`TOKENS` tokens);
            None: 16 for fp32, 1 for int8 (see the module's docstring).
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        cache_dir: Path,
        variant: Variant = "int8",
        threads: int = 1,
        batch_size: int | None = None,
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self._name = embedder_name(model_name_or_path)
        if self._name == DEFAULT_EMBEDDER_NAME:
            source = default_model_path()
        else:
            source = Path(str(model_name_or_path)).expanduser()
            if not source.is_dir():
                raise EmbedderLoadError(
                    f"cannot load embedding model {model_name_or_path!r} for onnxruntime: "
                    "give a local sentence-transformers model directory, or leave "
                    "CULTURESAFE_EMBEDDER_MODEL unset for the packaged all-MiniLM-L6-v2."
                )
        model_file = ensure_exported(source, variant_dir(cache_dir, self._name, variant), variant)
        try:
            self._tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise EmbedderLoadError(f"cannot load {source / 'tokenizer.json'}: {exc}") from exc
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(_max_seq_length(source))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                str(model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's pybind errors share no useful base
            raise EmbedderLoadError(
                f"cannot load the exported model {model_file}: {exc}. Delete it (or run "
                "`culturesafe index export-embedder --force`) to export it again."
            ) from exc
        self._inputs = [i.name for i in self._session.get_inputs()]
        if set(self._inputs) - set(INPUTS):
            raise EmbedderLoadError(f"{model_file} takes unexpected inputs {self._inputs}")
        if batch_size is None:
            batch_size = 1 if variant == "int8" else 16
        self._batch_size = max(1, batch_size)
        self._dimension = int(self._run([self._tokenizer.encode("probe")]).shape[1])
        self.variant = variant
        self.model_file = model_file

    @property
    def name(self) -> str:
        """The model's stable name, as recorded in index manifests (backend-independent)."""
        return self._name

    @property
    def dimension(self) -> int:
        """Length of every vector :meth:`encode` returns."""
        return self._dimension

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``; rows are L2-normalised float32, shape (n, dim), input order."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        chunk: list[int] = []
        for i in order:  # ascending length: the newest text sets the chunk's padded width
            width = len(encodings[i].ids)
            if chunk and (len(chunk) >= self._batch_size or (len(chunk) + 1) * width > TOKENS):
                out[chunk] = self._run([encodings[j] for j in chunk])
                chunk = []
            chunk.append(i)
        out[chunk] = self._run([encodings[j] for j in chunk])
        return out

    def _run(self, encodings: list[Any]) -> npt.NDArray[np.float32]:
        width = max(len(e.ids) for e in encodings)
        feeds = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in INPUTS}
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            feeds["input_ids"][row, :n] = encoding.ids
            feeds["attention_mask"][row, :n] = 1
            feeds["token_type_ids"][row, :n] = encoding.type_ids
        wanted = {name: feeds[name] for name in self._inputs}
        (vectors,) = self._session.run(None, wanted)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _max_seq_length(source: Path) -> int:
    """sentence-transformers' truncation length for this model (its config, else 256)."""
    config = source / "sentence_bert_config.json"
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_MAX_SEQ_LENGTH
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_MAX_SEQ_LENGTH

