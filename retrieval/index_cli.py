"""``culturesafe index ...``: build and inspect the FAISS index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retrieval.errors import RetrievalError

index_app = typer.Typer(help="Build and inspect the FAISS index of cultural descriptions.")

DEFAULT_INDEX_DIR = Path("var/index")


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
) -> None:
    """Embed the knowledge base and write the index (atomically) to --out."""
    from retrieval.index_store import IndexNotFoundError, read_manifest
    from retrieval.retriever import build_retriever

    before: str | None = None
    try:
        before = read_manifest(out).built_at
    except IndexNotFoundError:
        before = None
    except RetrievalError:
        before = None  # a damaged index: build_retriever reports or replaces it
    try:
        retriever = build_retriever(
            data_dir=data,
            index_dir=out,
            embedder_model=embedder,
            threshold=0.0,
            rebuild=rebuild,
            progress=True,
        )
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
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        typer.echo(f"{key}: {value}")
    typer.echo("files: ok (checksums match)")
