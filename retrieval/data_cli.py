"""``culturesafe data ...``: fetch the public AdaCultureSafe release and check a knowledge base."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from retrieval.errors import KnowledgeBaseError, RetrievalError

data_app = typer.Typer(help="Fetch the public AdaCultureSafe release.", no_args_is_help=True)

_DEFAULT_DEST = Path("data/adaculturesafe")


def _fail(error: Exception) -> NoReturn:
    """Print one clear line on stderr and exit 1 (no traceback for expected failures)."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        f"[red]error:[/red] {escape(str(error))}"
    )
    raise typer.Exit(1)


@data_app.command("pull")
def pull(
    url: Annotated[
        str | None,
        typer.Option(help="Base URL of the files (default: the pinned upstream GitHub commit)."),
    ] = None,
    dest: Annotated[Path, typer.Option(help="Directory to save the files in.")] = _DEFAULT_DEST,
    country: Annotated[
        list[str] | None,
        typer.Option(help="Only this country (repeatable), e.g. --country china."),
    ] = None,
    retries: Annotated[
        int, typer.Option(min=0, help="Resumes after a dropped connection, per file.")
    ] = 2,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Download the AdaCultureSafe files, verify their SHA-256 and save them as china.json etc."""
    from retrieval.pull import DEFAULT_BASE_URL, pull_dataset

    try:
        results = pull_dataset(
            dest,
            base_url=url or DEFAULT_BASE_URL,
            countries=country,
            retries=retries,
            show_progress=progress,
        )
    except RetrievalError as exc:
        _fail(exc)
    console = Console(soft_wrap=True, highlight=False)
    for result in results:
        console.print(f"{result.status:>10}  {result.path}")
    console.print(
        f"{len(results)} file(s) verified in {dest}; use it with "
        f"CULTURESAFE_DATA_DIR={dest} or --data {dest}"
    )


@data_app.command("check")
def check(
    path: Annotated[
        Path | None,
        typer.Argument(help="Directory or .json/.jsonl file (default: the starter KB)."),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip and count invalid items instead of failing.")
    ] = False,
) -> None:
    """Load a knowledge base, report what it holds, or say exactly what is wrong with it."""
    from retrieval.knowledge_base import load_knowledge_base

    try:
        kb = load_knowledge_base(path, skip_invalid=skip_invalid)
    except KnowledgeBaseError as exc:
        _fail(exc)
    console = Console(soft_wrap=True, highlight=False)
    table = Table("location", "descriptions", "knowledge MCQs", "safety queries")
    per_location = Counter(d.location for d in kb.descriptions)
    for location in kb.locations:
        items = [d for d in kb.descriptions if d.location == location]
        table.add_row(
            location,
            str(per_location[location]),
            str(sum(len(d.knowledge) for d in items)),
            str(sum(len(d.safety) for d in items)),
        )
    console.print(table)
    console.print(f"source: {kb.source}")
    console.print(f"content hash: {kb.content_hash}")
    if kb.skipped:
        console.print(f"[yellow]skipped {kb.skipped} invalid item(s):[/yellow]")
        for reason in kb.skipped_reasons:
            console.print(f"  {reason}", highlight=False, markup=False)
