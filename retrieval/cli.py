"""``culturesafe index ...`` and ``culturesafe data ...`` sub-commands."""

from __future__ import annotations

import typer

index_app = typer.Typer(help="Build and inspect the FAISS index of cultural descriptions.")
data_app = typer.Typer(help="Fetch the public AdaCultureSafe release.")
