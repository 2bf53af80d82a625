"""Export a sentence-transformers model to ONNX (fp32 or int8) into a cache directory.

The exported graph is the whole query embedder: BERT encoder, mean pooling over the
attention mask and L2 normalisation, so onnxruntime returns the final vectors. It is
traced from the local weights (``model.safetensors``) with the TorchScript exporter, fully
offline. ``int8`` is then quantised with dynamic quantisation of the MatMul weights, per
output channel (per-tensor weights lost ~3 points of cosine to the torch vectors; per
channel keeps it at ~0.994). Embeddings stay fp32, as do pooling and normalisation.

Each variant lives in ``<cache_dir>/<model dir name>/<variant>/`` as ``model.onnx`` plus a
``manifest.json`` written last (temp file + rename, so a crash leaves no half model that
looks finished). The manifest records the source weights' sha256, the model file's sha256,
the opset, the onnxruntime version and the quantisation; anything different, or a model
file that no longer matches its checksum, triggers a fresh export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Literal

from retrieval.embedder import EmbedderLoadError

log = logging.getLogger(__name__)

Variant = Literal["fp32", "int8"]
VARIANTS: tuple[Variant, ...] = ("fp32", "int8")
OPSET = 17
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "sentence_embedding"
QUANTISATION = {"fp32": None, "int8": "dynamic QInt8 MatMul weights, per channel"}


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def variant_dir(cache_dir: Path, model_name: str, variant: Variant) -> Path:
    """``<cache_dir>/<last part of the model's name>/<variant>``."""
    return cache_dir / Path(model_name).name / variant


def expected_manifest(source_dir: Path, variant: Variant) -> dict[str, Any]:
    """What a fresh export of ``source_dir`` as ``variant`` would record (no model hash)."""
    import onnxruntime

    weights = source_dir / "model.safetensors"
    if not weights.is_file():
        raise EmbedderLoadError(f"no model.safetensors in {source_dir}: cannot export to ONNX")
    return {
        "source": str(source_dir),
        "source_sha256": sha256_of(weights),
        "variant": variant,
        "quantisation": QUANTISATION[variant],
        "opset": OPSET,
        "onnxruntime": onnxruntime.__version__,
    }


def is_current(directory: Path, expected: dict[str, Any]) -> bool:
    """Whether ``directory`` holds a finished export matching ``expected`` and its checksum."""
    try:
        recorded = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict):
        return False
    model_sha = recorded.pop("model_sha256", None)
    for informative in ("exported_at", "export_s", "source"):  # not what makes the model
        recorded.pop(informative, None)
    wanted = {k: v for k, v in expected.items() if k != "source"}
    model = directory / MODEL_FILE
    return recorded == wanted and model.is_file() and sha256_of(model) == model_sha


def ensure_exported(
    source_dir: Path, directory: Path, variant: Variant, *, force: bool = False
) -> Path:
    """The path of an up-to-date ``model.onnx`` in ``directory``, exported if needed.

    Args:
        source_dir: the sentence-transformers model directory (weights, tokenizer).
        directory: this variant's cache directory (:func:`variant_dir`).
        variant: ``"fp32"`` or ``"int8"``.
        force: export even if the cached model is current.
    """
    try:
        expected = expected_manifest(source_dir, variant)
        if not force and is_current(directory, expected):
            return directory / MODEL_FILE
        return _export(source_dir, directory, variant, expected)
    except OSError as exc:  # unreadable weights, read-only or full cache directory
        raise EmbedderLoadError(
            f"cannot export {source_dir} to ONNX in {directory}: {exc}. Give a writable "
            "CULTURESAFE_EMBEDDER_CACHE_DIR, or run `culturesafe index export-embedder` "
            "where it is writable."
        ) from exc


def _export(source_dir: Path, directory: Path, variant: Variant, expected: dict[str, Any]) -> Path:
    log.info("exporting %s to ONNX (%s) in %s ...", source_dir, variant, directory)
    start = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST_FILE).unlink(missing_ok=True)  # unfinished until rewritten
    with tempfile.TemporaryDirectory(dir=directory, prefix=".export-") as work:
        fp32 = Path(work) / "fp32.onnx"
        _export_fp32(source_dir, fp32)
        log.info("traced the model in %.1f s", time.perf_counter() - start)
        built = fp32
        if variant == "int8":
            built = Path(work) / "int8.onnx"
            _quantise(fp32, built)
            log.info("quantised to int8 in %.1f s total", time.perf_counter() - start)
        os.replace(built, directory / MODEL_FILE)
    elapsed = time.perf_counter() - start
    manifest = {
        **expected,
        "model_sha256": sha256_of(directory / MODEL_FILE),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "export_s": round(elapsed, 1),
    }
    _write_atomically(directory / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    log.info("exported %s in %.1f s", directory / MODEL_FILE, elapsed)
    return directory / MODEL_FILE


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _export_fp32(source_dir: Path, target: Path) -> None:
    """Trace encoder + mean pooling + normalisation to ``target`` (needs torch, offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    try:
        bert = AutoModel.from_pretrained(str(source_dir), attn_implementation="eager")
    except (OSError, ValueError) as exc:
        raise EmbedderLoadError(f"cannot load {source_dir} to export it: {exc}") from exc

    class PooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    dummy = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and legacy-exporter notices, all expected
        torch.onnx.export(
            PooledEncoder().eval(),
            (dummy, dummy, torch.zeros_like(dummy)),
            str(target),
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_axes={**axes, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def _quantise(fp32: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs one line per tensor on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(fp32),
                str(target),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
    finally:
        root.setLevel(level)
