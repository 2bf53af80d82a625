"""``culturesafe index ...``: build and inspect the FAISS index."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from retrieval.build import DEFAULT_INDEX_DIR, build_retriever
from retrieval.embedder_factory import BACKENDS, DEFAULT_BACKEND, DEFAULT_CACHE_DIR
from retrieval.errors import RetrievalError
from retrieval.multilingual import build_routed_retriever, sibling_dir

index_app = typer.Typer(help="Build and inspect the FAISS index of cultural descriptions.")
PROBE_LEAD = 3  # leading values of the probe vector `index info` shows


def probe_summary(probe: Sequence[float] | None) -> str:
    """The manifest's probe vector in one line: its dimension, its first values and a
    digest of all of them (two indexes whose probes differ anywhere show different ones)."""
    if probe is None:
        return "none (an index built before probes were recorded)"
    lead = ", ".join(f"{x:.4f}" for x in probe[:PROBE_LEAD])
    more = ", ..." if len(probe) > PROBE_LEAD else ""
    digest = hashlib.sha256(",".join(repr(float(x)) for x in probe).encode()).hexdigest()
    return f"dimension {len(probe)}: {lead}{more} (sha256 {digest[:12]})"


@index_app.command("build")
def build(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Knowledge base: AdaCultureSafe JSON / JSONL file or directory "
            "(default: the starter knowledge base shipped in the package).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Index directory to write.")] = (
        DEFAULT_INDEX_DIR
    ),
    embedder: Annotated[
        str | None,
        typer.Option(
            "--embedder",
            help="Local model directory or cached model name "
            "(default: the packaged all-MiniLM-L6-v2).",
        ),
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Rebuild even if a matching index exists."),
    ] = False,
    backend: Annotated[
        str,
        typer.Option("--backend", help="Embedder runtime: torch, onnx or onnx-int8."),
    ] = DEFAULT_BACKEND,
    cache_dir: Annotated[
        Path, typer.Option("--cache-dir", help="Where the onnx backends keep exported models.")
    ] = DEFAULT_CACHE_DIR,
    multilingual: Annotated[
        bool,
        typer.Option(
            "--multilingual/--no-multilingual",
            help="Also the e5 and USE indexes of non-English queries (beside --out).",
        ),
    ] = True,
    intent_gate: Annotated[
        bool,
        typer.Option(
            "--intent-gate/--no-intent-gate",
            help="Also fit the intent gate of each path (saved in its index directory).",
        ),
    ] = True,
) -> None:
    """Embed the knowledge base and write the index (atomically) to --out, with what the
    gateway's defaults also need (the multilingual indexes, the intent gates), so that it
    starts without fitting or embedding anything."""
    from retrieval.index_store import IndexNotFoundError, read_manifest

    before: str | None = None
    try:
        before = read_manifest(out).built_at
    except IndexNotFoundError:
        before = None
    except RetrievalError:
        before = None  # a damaged index: build_retriever reports or replaces it
    options: dict[str, Any] = {
        "data_dir": data, "index_dir": out, "embedder_model": embedder, "threshold": 0.0,
        "rebuild": rebuild, "progress": True, "embedder_backend": backend,
        "embedder_cache_dir": cache_dir, "embedder_threads": 0, "intent_gate": intent_gate,
    }
    try:
        if multilingual:
            routed = build_routed_retriever(**options)
            retriever, gates = routed.english, [routed.english.gate, routed.other.gate]
        else:
            retriever = build_retriever(**options)
            gates = [retriever.gate]
    except RetrievalError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    manifest = retriever.manifest
    assert manifest is not None  # build_retriever always sets it
    verb = "up to date" if before == manifest.built_at else "written"
    typer.echo(
        f"index {verb}: {out} ({manifest.num_passages} descriptions, "
        f"{manifest.num_vectors} vectors, {manifest.embedder}, "
        f"{len(retriever.locations)} locations)"
    )
    if multilingual:
        typer.echo(f"multilingual indexes: {sibling_dir(out, 'e5')}, {sibling_dir(out, 'use')}")
    for gate in gates:
        if gate is not None:
            typer.echo(f"intent gate: {gate.embedder} (cultural >= {gate.cultural_threshold:.3f}, "
                       f"disparaging >= {gate.disparaging_threshold:.3f})")


@index_app.command("info")
def info(
    directory: Annotated[Path, typer.Option("--dir", help="Index directory.")] = (
        DEFAULT_INDEX_DIR
    ),
) -> None:
    """Show what an index was built from, and check its files against their checksums."""
    from retrieval.index_store import read_manifest, verify_files

    try:
        manifest = read_manifest(directory)
        verify_files(directory, manifest)
    except RetrievalError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    for key, value in manifest.model_dump().items():
        if key == "embedder_probe":  # hundreds of floats
            value = probe_summary(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        typer.echo(f"{key}: {value}")
    typer.echo("files: ok (checksums match)")


@index_app.command("export-embedder")
def export_embedder(
    backend: Annotated[
        str, typer.Option("--backend", help="onnx, onnx-int8, or all (both).")
    ] = "all",
    embedder: Annotated[
        str | None,
        typer.Option("--embedder", help="Local model directory (default: packaged MiniLM)."),
    ] = None,
    cache_dir: Annotated[
        Path, typer.Option("--cache-dir", help="Where exported models are kept.")
    ] = DEFAULT_CACHE_DIR,
    force: Annotated[
        bool, typer.Option("--force", help="Export even if the cached model is current.")
    ] = False,
) -> None:
    """Export the embedder to ONNX (fp32 and/or int8) now, instead of at first use."""
    import logging

    from retrieval.embedder import DEFAULT_EMBEDDER_NAME, default_model_path, embedder_name
    from retrieval.onnx_export import Variant, ensure_exported, variant_dir

    onnx_backends = [b for b in BACKENDS if b != "torch"]
    chosen = onnx_backends if backend == "all" else [backend]
    if not set(chosen) <= set(onnx_backends):
        typer.echo(f"error: --backend must be one of {', '.join(onnx_backends)}, all", err=True)
        raise typer.Exit(code=2)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    export_log = logging.getLogger("retrieval.onnx_export")
    export_log.addHandler(handler)
    export_log.setLevel(logging.INFO)
    export_log.propagate = False  # the quantiser may have configured the root logger
    name = embedder_name(embedder)
    source = default_model_path() if name == DEFAULT_EMBEDDER_NAME else Path(name)
    try:
        for choice in chosen:
            variant: Variant = "int8" if choice == "onnx-int8" else "fp32"
            directory = variant_dir(cache_dir, name, variant)
            path = ensure_exported(source, directory, variant, force=force)
            size = path.stat().st_size / 1e6
            typer.echo(f"{choice}: {path} ({size:.0f} MB, manifest {directory}/manifest.json)")
    except RetrievalError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    finally:
        export_log.removeHandler(handler)
        export_log.propagate = True
