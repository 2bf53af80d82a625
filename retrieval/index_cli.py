"""``culturesafe index ...``: build and inspect the FAISS index."""

from __future__ import annotations

import typer

index_app = typer.Typer(help="Build and inspect the FAISS index of cultural descriptions.")
